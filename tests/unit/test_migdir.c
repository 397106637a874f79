/* Unit tests for migdir.c against real temporary directories. */
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "layout.h"
#include "migfile.h"
#include "tap.h"
#include "util.h"

static char	*top;	/* the mkdtemp directory, removed at the end */

/* Builds the tree under test; any setup failure ends the run loudly. */
static void
put(const char *rel, const char *text, mode_t mode)
{
	char	*path = xprintf("%s/%s", top, rel);
	FILE	*f;

	if ((f = fopen(path, "w")) == NULL || fputs(text, f) == EOF ||
	    fclose(f) == EOF || chmod(path, mode) == -1) {
		perror(path);
		exit(2);
	}
	free(path);
}

/* Creates a directory under the temporary top. */
static void
mkd(const char *rel, mode_t mode)
{
	char	*path = xprintf("%s/%s", top, rel);

	if (mkdir(path, 0700) == -1 || chmod(path, mode) == -1) {
		perror(path);
		exit(2);
	}
	free(path);
}

/* Creates a symbolic link under the temporary top. */
static void
lnk(const char *target, const char *rel)
{
	char	*path = xprintf("%s/%s", top, rel);

	if (symlink(target, path) == -1) {
		perror(path);
		exit(2);
	}
	free(path);
}

/* Returns "top/rel": what migdir puts into its messages. */
static char *
at(const char *rel)
{
	return (xprintf("%s/%s", top, rel));
}

/* Errors compared as one string show every difference in one failure. */
static char *
join(struct errlist *el)
{
	return (errlist_join(el, "\n"));
}

/* The expected message with "@" for the directory. */
static char *
expand(const char *pattern)
{
	struct passwd	*pw = getpwuid(geteuid());
	char		*s, *t;

	/* "<me>": the owner of what the tests create. */
	s = tap_expand(pattern, top);
	t = tap_subst(s, "<me>", pw != NULL ? pw->pw_name : "?");
	free(s);
	return (t);
}

/* Loads rel (under top) that must fail with exactly want ("@" = top). */
static void
load_fails(const char *rel, const char *want, const char *name)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir = at(rel), *got, *exp = expand(want);

	/* Garbage in: the load must clear it. */
	memset(&set, 0, sizeof set);
	set.files = (struct migfile **)1;
	set.n = 99;

	is_int(migdir_load(dir, &set, &el), -1, "%s: fails", name);
	ok(set.files == NULL && set.n == 0, "%s: set left empty", name);
	got = join(&el);
	is_str(got, exp, "%s: messages", name);
	free(got);
	free(exp);
	free(dir);
	errlist_clear(&el);
}

/* nftw callback: removes everything, children first. */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) == -1)
		perror(path);
	return (0);
}

/* A good tree with every kind of entry that must be skipped. */
static void
test_good_tree(void)
{
	static const char *want[] = {
		"good/0001_init.sql",
		"good/b.sql",
		"good/b/0004.sql",
		"good/link.sql",
		"good/sub/0002_next.sql",
		"good/sub/deeper/0003.sql",
	};
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *path, *got;
	size_t		 i;
	int		 rc;

	mkd("good", 0755);
	mkd("good/sub", 0755);
	mkd("good/sub/deeper", 0750);
	mkd("good/b", 0755);
	mkd("good/.git", 0755);
	mkd("good/ignored.d", 0755);
	put("good/0001_init.sql", "-- down_revision: none\n-- migrate:up\n"
	    "CREATE TABLE t ();\n-- migrate:down\nDROP TABLE t;\n", 0644);
	put("good/sub/0002_next.sql", "-- down_revision: 0001\n"
	    "-- migrate:up\nSELECT 1;\n", 0600);
	put("good/sub/deeper/0003.sql", "-- down_revision: 0002\n"
	    "-- migrate:up\n", 0664);
	put("good/b/0004.sql", "-- down_revision: 0003\n-- migrate:up\n",
	    0444);
	put("good/b.sql", "-- down_revision: 0004\n-- migrate:up\n", 0644);
	put("good/.hidden.sql", "broken", 0644);
	put("good/.git/x.sql", "broken", 0644);
	put("good/README.md", "broken", 0644);
	put("good/notes.sql.bak", "broken", 0644);
	put("good/ignored.d/readme.txt", "broken", 0666);
	put("outside.sql", "-- down_revision: b\n-- migrate:up\n", 0644);
	lnk("../outside.sql", "good/link.sql");
	lnk("sub", "good/linkdir");
	lnk("sub", "good/linkdir.sql");

	/* A trailing slash must not double up in paths. */
	dir = xprintf("%s/good/", top);
	rc = migdir_load(dir, &set, &el);
	got = join(&el);
	is_int(rc, 0, "good tree loads");
	is_str(got, "", "good tree: no errors");
	is_int(set.n, nitems(want), "good tree: every migration, no more");
	for (i = 0; i < nitems(want) && i < set.n; i++) {
		path = at(want[i]);
		is_str(set.files[i]->path, path, "file %zu is %s", i, want[i]);
		free(path);
	}
	if (set.n == nitems(want)) {
		is_str(set.files[0]->revision, "0001", "parsed: revision");
		is_str(set.files[0]->down, "DROP TABLE t;\n", "parsed: down");
		is_str(set.files[3]->revision, "link", "symlinked file read");
		is_str(set.files[4]->up, "SELECT 1;\n", "parsed: nested up");
	}
	migset_clear(&set);
	ok(set.files == NULL && set.n == 0, "migset_clear empties the set");
	migset_clear(&set);
	ok(1, "migset_clear twice is harmless");
	free(got);
	free(dir);
	errlist_clear(&el);
}

/* Errors from every file are collected, not just the first file's. */
static void
test_broken(void)
{
	mkd("broken", 0755);
	mkd("broken/z", 0755);
	put("broken/0001_a.sql", "-- down_revision: none\n-- migrate:up\n",
	    0644);
	put("broken/0002_b.sql", "-- revsion: x\n-- migrate:up\n", 0644);
	put("broken/z/0003.sql", "-- down_revision: 0002\nSELECT 1;\n", 0644);
	load_fails("broken",
	    "@/broken/0002_b.sql:1: unknown header 'revsion' (known: "
	    "revision, down_revision, message, transaction, depends_on, "
	    "branch_labels, unfinished)\n"
	    "@/broken/0002_b.sql:1: missing 'down_revision' header (write "
	    "'down_revision: none' for the first revision)\n"
	    "@/broken/z/0003.sql:1: no '-- migrate:up' section (put a line "
	    "'-- migrate:up' between the header and the SQL)",
	    "two broken files");
}

/* Like sshd's StrictModes: others must not be able to change what runs. */
static void
test_permissions(void)
{
	mkd("wfile", 0755);
	put("wfile/0001.sql", "-- down_revision: none\n-- migrate:up\n", 0646);
	put("wfile/0002.sql", "-- down_revision: 0001\n-- migrate:up\n", 0644);
	load_fails("wfile",
	    "@/wfile/0001.sql: refusing a migrations file writable by other "
	    "users (owner <me>, mode 0646): chmod o-w @/wfile/0001.sql",
	    "world-writable file");

	mkd("wdir", 0755);
	mkd("wdir/sub", 0757);
	put("wdir/sub/0001.sql", "-- down_revision: none\n-- migrate:up\n",
	    0644);
	load_fails("wdir",
	    "@/wdir/sub: refusing a migrations directory writable by other "
	    "users (owner <me>, mode 0757): chmod o-w @/wdir/sub",
	    "world-writable subdirectory");

	mkd("wtop", 01777);
	load_fails("wtop",
	    "@/wtop: refusing a migrations directory writable by other users "
	    "(owner <me>, mode 1777): chmod o-w @/wtop",
	    "world-writable top directory");

	/* The target's mode counts for a link, not the link's own. */
	mkd("wlink", 0755);
	put("wtarget.sql", "-- down_revision: none\n-- migrate:up\n", 0666);
	lnk("../wtarget.sql", "wlink/0001.sql");
	load_fails("wlink",
	    "@/wlink/0001.sql: refusing a migrations file writable by other "
	    "users (owner <me>, mode 0666): chmod o-w @/wlink/0001.sql",
	    "symlink to a world-writable file");
}

/* Missing, empty, unreadable and odd entries. */
static void
test_other(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *path;
	int		 fd;

	load_fails("missing",
	    "@/missing: cannot open migrations directory: No such file or "
	    "directory",
	    "missing directory");

	put("plain", "", 0644);
	load_fails("plain",
	    "@/plain: cannot open migrations directory: Not a directory",
	    "directory is a file");

	mkd("empty", 0755);
	mkd("empty/sub", 0755);
	put("empty/README", "no migrations yet", 0644);
	dir = at("empty");
	is_int(migdir_load(dir, &set, &el), 0, "empty directory loads");
	is_int(set.n, 0, "empty directory: no files");
	is_int(el.n, 0, "empty directory: no errors");
	migset_clear(&set);
	free(dir);

	mkd("dangling", 0755);
	lnk("nowhere.sql", "dangling/0001.sql");
	load_fails("dangling",
	    "@/dangling/0001.sql: No such file or directory",
	    "dangling symlink");

	mkd("fifo", 0755);
	path = at("fifo/0001.sql");
	if (mkfifo(path, 0644) == -1) {
		perror(path);
		exit(2);
	}
	free(path);
	load_fails("fifo", "@/fifo/0001.sql: not a regular file",
	    "FIFO named .sql");

	mkd("big", 0755);
	path = at("big/0001.sql");
	if ((fd = open(path, O_WRONLY | O_CREAT, 0644)) == -1 ||
	    ftruncate(fd, (off_t)MIGFILE_MAX_SIZE + 1) == -1 || close(fd)) {
		perror(path);
		exit(2);
	}
	free(path);
	load_fails("big",
	    "@/big/0001.sql: file too large (the limit is 64 MiB)",
	    "file over 64 MiB");

	mkd("unreadable", 0755);
	put("unreadable/0001.sql", "-- down_revision: none\n-- migrate:up\n",
	    0000);
	if (geteuid() == 0) {
		/* Root reads anything: check as nobody, in a child. */
		char	*exp = expand(
			    "@/unreadable/0001.sql: Permission denied");
		pid_t	 pid;
		int	 status = -1;

		chmod(top, 0711);
		fflush(stdout);
		if ((pid = fork()) == 0) {
			struct errlist	 cel = { NULL, 0 };
			struct migset	 cset;
			char		*d = at("unreadable"), *got;

			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(3);
			if (migdir_load(d, &cset, &cel) != -1)
				_exit(4);
			got = join(&cel);
			_exit(strcmp(got, exp) == 0 ? 0 : 5);
		}
		waitpid(pid, &status, 0);
		chmod(top, 0700);
		ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "unreadable file, as nobody: %s (child status %d)", exp,
		    status);
		free(exp);
	} else {
		load_fails("unreadable",
		    "@/unreadable/0001.sql: Permission denied",
		    "unreadable file");
	}

	/* Errors are appended to what the caller already had. */
	errlist_add(&el, "earlier");
	dir = at("missing");
	is_int(migdir_load(dir, &set, &el), -1, "appends: fails");
	is_int(el.n, 2, "appends: earlier message kept");
	free(dir);
	errlist_clear(&el);
}

/* The stat signature sees edits, new files and removals. */
static void
test_signature(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *path;
	struct timespec	 later[2];

	mkd("sig", 0755);
	put("sig/0001_a.sql", "-- down_revision: none\n-- migrate:up\n", 0644);
	dir = at("sig");
	is_int(migdir_load(dir, &set, &el), 0, "signature: loads");
	ok(migset_unchanged(&set), "signature: unchanged right after");
	path = at("sig/0001_a.sql");
	/* same size, later mtime: an edit that keeps the length */
	clock_gettime(CLOCK_REALTIME, &later[0]);
	later[0].tv_sec += 5;
	later[1] = later[0];
	utimensat(AT_FDCWD, path, later, 0);
	ok(!migset_unchanged(&set), "signature: an edited file shows");
	migset_clear(&set);
	is_int(migdir_load(dir, &set, &el), 0, "signature: loads again");
	put("sig/0002_b.sql", "-- down_revision: 0001\n-- migrate:up\n", 0644);
	ok(!migset_unchanged(&set), "signature: a new file shows");
	migset_clear(&set);
	is_int(migdir_load(dir, &set, &el), 0, "signature: loads a third time");
	unlink(path);
	ok(!migset_unchanged(&set), "signature: a removed file shows");
	migset_clear(&set);
	errlist_clear(&el);
	free(path);
	free(dir);
}

/* Another tool's layout through the walk: pairs joined, the down file
 * watched, unchanged files never shared (their parents are recomputed),
 * names the tool does not read said as skipped. */
static void
test_layouts(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	struct migcache	 cache;
	char		*dir, *path, *got;
	struct timespec	 later[2];

	mkd("gm", 0755);
	put("gm/000001_init.up.sql", "CREATE TABLE t ();\n", 0644);
	put("gm/000001_init.down.sql", "DROP TABLE t;\n", 0644);
	put("gm/000002_more.up.sql", "SELECT 2;\n", 0644);
	put("gm/schema.sql", "-- a dump\n", 0644);
	dir = at("gm");
	is_int(migdir_scan_format(dir, LAYOUT_GOLANG_MIGRATE, &set, &el,
	    NULL), 0, "layouts: golang-migrate loads");
	is_int(set.format, LAYOUT_GOLANG_MIGRATE, "layouts: format kept");
	is_int(set.n, 2, "layouts: two revisions from three files");
	is_str(set.files[1]->parents[0], "1", "layouts: chained");
	got = errlist_join(&set.skipped, "\n");
	ok(strstr(got, "gm/schema.sql: skipped: not a golang-migrate "
	    "migration name") != NULL, "layouts: other names said skipped");
	free(got);
	ok(migset_unchanged(&set), "layouts: unchanged right after");
	path = at("gm/000001_init.down.sql");
	clock_gettime(CLOCK_REALTIME, &later[0]);
	later[0].tv_sec += 5;
	later[1] = later[0];
	utimensat(AT_FDCWD, path, later, 0);
	ok(!migset_unchanged(&set), "layouts: an edited down file shows");
	migcache_init(&cache, set.files, set.n);
	migset_clear(&set);
	is_int(migdir_scan_format(dir, LAYOUT_AUTO, &set, &el, &cache), 0,
	    "layouts: auto loads it again");
	is_int(set.format, LAYOUT_GOLANG_MIGRATE, "layouts: auto detected");
	is_int((int)cache.taken, 0, "layouts: nothing taken from the cache");
	migcache_clear(&cache);
	migset_clear(&set);
	free(dir);

	/* migd's files, then the configuration says dbmate: read afresh. */
	mkd("tomate", 0755);
	put("tomate/20240101_a.sql", "-- down_revision: none\n"
	    "-- migrate:up\nSELECT 1;\n", 0644);
	dir = at("tomate");
	is_int(migdir_scan_format(dir, LAYOUT_AUTO, &set, &el, NULL), 0,
	    "layouts: a migd file");
	is_int(set.format, LAYOUT_MIGD, "layouts: auto says migd");
	migcache_init(&cache, set.files, set.n);
	migset_clear(&set);
	is_int(migdir_scan_format(dir, LAYOUT_DBMATE, &set, &el, &cache), 0,
	    "layouts: the same file as dbmate");
	ok(set.n == 1 && set.files[0]->layout == LAYOUT_DBMATE &&
	    cache.taken == 0, "layouts: not taken from the cache of migd's");
	migcache_clear(&cache);
	migset_clear(&set);
	errlist_clear(&el);
	free(path);
	free(dir);
}

/* A file's stat moved on (as an edit that keeps its length would). */
static void
touch_later(const char *rel, int secs)
{
	struct timespec	 later[2];
	char		*path = at(rel);

	clock_gettime(CLOCK_REALTIME, &later[0]);
	later[0].tv_sec += secs;
	later[1] = later[0];
	if (utimensat(AT_FDCWD, path, later, 0) == -1) {
		perror(path);
		exit(2);
	}
	free(path);
}

/* format = diesel: each migration's directory read by name (up.sql,
 * down.sql, metadata.toml), listed as before when it has no up.sql or
 * holds directories; run_in_transaction = false makes it non-transactional
 * and its metadata.toml is watched. */
static void
test_diesel(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *got, *exp;
	int		 f;

	mkd("ds", 0755);
	mkd("ds/2024-01-01-000000_plain", 0755);
	put("ds/2024-01-01-000000_plain/up.sql", "CREATE TABLE a ();\n", 0644);
	put("ds/2024-01-01-000000_plain/down.sql", "DROP TABLE a;\n", 0644);
	mkd("ds/2024-01-02-000000_idx", 0755);
	put("ds/2024-01-02-000000_idx/up.sql",
	    "CREATE INDEX CONCURRENTLY a_i ON a ((1));\n", 0644);
	put("ds/2024-01-02-000000_idx/metadata.toml",
	    "run_in_transaction = false\n", 0644);
	mkd("ds/2024-01-03-000000_intx", 0755);
	put("ds/2024-01-03-000000_intx/up.sql", "SELECT 3;\n", 0644);
	put("ds/2024-01-03-000000_intx/metadata.toml",
	    "# diesel's default\nrun_in_transaction = true\n", 0644);
	dir = at("ds");
	for (f = LAYOUT_AUTO; f <= LAYOUT_DIESEL; f += LAYOUT_DIESEL) {
		is_int(migdir_scan_format(dir, f, &set, &el, NULL), 0,
		    "diesel (%s): loads", layout_name(f));
		got = join(&el);
		is_str(got, "", "diesel (%s): no errors", layout_name(f));
		free(got);
		is_int(set.format, LAYOUT_DIESEL, "diesel (%s): read as diesel",
		    layout_name(f));
		ok(set.n == 3 && set.files[0]->tx == MIGFILE_TX_AUTO &&
		    set.files[1]->tx == MIGFILE_TX_NONE &&
		    set.files[2]->tx == MIGFILE_TX_AUTO,
		    "diesel (%s): run_in_transaction = false, and only there",
		    layout_name(f));
		ok(set.n == 3 && set.files[0]->down != NULL &&
		    set.files[0]->down_path != NULL &&
		    strstr(set.files[0]->down_path, "plain/down.sql") != NULL &&
		    set.files[1]->down == NULL,
		    "diesel (%s): down.sql joined where there is one",
		    layout_name(f));
		is_int((int)set.n_dirs, 4, "diesel (%s): every directory "
		    "watched", layout_name(f));
		is_int((int)set.n_extra, 2, "diesel (%s): both metadata.toml "
		    "watched", layout_name(f));
		ok(migset_unchanged(&set), "diesel (%s): unchanged right after",
		    layout_name(f));
		touch_later("ds/2024-01-02-000000_idx/metadata.toml", 5 + f);
		ok(!migset_unchanged(&set), "diesel (%s): an edited "
		    "metadata.toml shows", layout_name(f));
		migset_clear(&set);
	}

	/* Other files, and a directory without up.sql: what is read. */
	mkd("ds/2024-01-04-000000_typo", 0755);
	put("ds/2024-01-04-000000_typo/Up.sql", "SELECT 4;\n", 0644);
	put("ds/2024-01-02-000000_idx/notes.sql", "-- not read\n", 0644);
	mkd("ds/2024-01-03-000000_intx/old", 0755);
	put("ds/2024-01-03-000000_intx/old/up.sql", "SELECT 0;\n", 0644);
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, NULL), 0,
	    "diesel: loads with other files");
	is_int((int)set.n, 3, "diesel: still three migrations");
	got = errlist_join(&set.skipped, "\n");
	ok(strstr(got, "typo/Up.sql: skipped: diesel reads only") != NULL &&
	    strstr(got, "intx/old/up.sql: skipped") != NULL &&
	    strstr(got, "notes.sql") == NULL, "diesel: a directory without "
	    "up.sql or with directories is listed and said; others are read "
	    "by name, as diesel does: %s", got);
	free(got);
	migset_clear(&set);

	/* A metadata.toml migd cannot read refuses the load, naming it. */
	put("ds/2024-01-02-000000_idx/metadata.toml",
	    "run_in_transaction = no\n", 0644);
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, NULL), -1,
	    "diesel: a bad metadata.toml refused");
	got = join(&el);
	exp = expand("@/ds/2024-01-02-000000_idx/metadata.toml:1: "
	    "run_in_transaction must be true or false (a TOML boolean, "
	    "unquoted), not 'no'");
	is_str(got, exp, "diesel: the file, the line, what it must be");
	free(got);
	free(exp);
	errlist_clear(&el);
	migset_clear(&set);

	/* Not trusted: the directory read by name is checked as a listed
	 * one is. */
	put("ds/2024-01-02-000000_idx/metadata.toml",
	    "run_in_transaction = false\n", 0644);
	chmod(got = at("ds/2024-01-01-000000_plain"), 0777);
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, NULL), -1,
	    "diesel: a world-writable migration directory refused");
	free(got);
	got = join(&el);
	ok(strstr(got, "2024-01-01-000000_plain: refusing a migrations "
	    "directory writable by other users") != NULL,
	    "diesel: the refusal names the directory: %s", got);
	free(got);
	errlist_clear(&el);
	migset_clear(&set);
	chmod(got = at("ds/2024-01-01-000000_plain"), 0755);
	free(got);
	free(dir);
}

/* Reloads of another tool's directory: the files stat says are unchanged
 * are not read again (copied from the last load, counted as taken), an
 * edited one is; parents are settled afresh. */
static void
test_reuse(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	struct migcache	 cache;
	char		*dir;

	mkd("re", 0755);
	mkd("re/1_a", 0755);
	put("re/1_a/up.sql", "CREATE TABLE a ();\n", 0644);
	put("re/1_a/down.sql", "DROP TABLE a;\n", 0644);
	mkd("re/2_b", 0755);
	put("re/2_b/up.sql", "CREATE TABLE b ();\n", 0644);
	put("re/2_b/down.sql", "DROP TABLE b;\n", 0644);
	mkd("re/3_c", 0755);
	put("re/3_c/up.sql", "CREATE TABLE c ();\n", 0644);
	dir = at("re");
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, NULL), 0,
	    "reuse: loads");

	/* An edit of one up.sql (its length and time change). */
	put("re/2_b/up.sql", "CREATE TABLE b2 ();\n", 0644);
	touch_later("re/2_b/up.sql", 7);
	migcache_init(&cache, set.files, set.n);
	migset_clear(&set);
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, &cache), 0,
	    "reuse: loads again");
	is_int((int)cache.taken, 2, "reuse: the two unchanged migrations "
	    "taken, the edited one not");
	ok(set.n == 3 && strcmp(set.files[1]->up, "CREATE TABLE b2 ();\n") ==
	    0 && set.files[1]->reused == 0, "reuse: the edit is read");
	ok(set.n == 3 && set.files[0]->reused == 1 &&
	    strcmp(set.files[0]->up, "CREATE TABLE a ();\n") == 0 &&
	    strcmp(set.files[0]->down, "DROP TABLE a;\n") == 0 &&
	    set.files[0]->down_path != NULL, "reuse: an unchanged one copied "
	    "whole, its down.sql joined again");
	ok(set.n == 3 && set.files[2]->n_parents == 1 &&
	    strcmp(set.files[2]->parents[0], "2") == 0, "reuse: parents "
	    "settled afresh");

	/* A new migration between two: the one after it gets a new parent,
	 * though its files are unchanged. */
	migcache_clear(&cache);
	migcache_init(&cache, set.files, set.n);
	migset_clear(&set);
	mkd("re/25_x", 0755);
	put("re/25_x/up.sql", "SELECT 25;\n", 0644);
	is_int(migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, &cache), 0,
	    "reuse: loads with a new one");
	is_int((int)cache.taken, 3, "reuse: the three others taken");
	ok(set.n == 4 && strcmp(set.files[3]->revision, "3") == 0 &&
	    set.files[3]->n_parents == 1 &&
	    strcmp(set.files[3]->parents[0], "25") == 0,
	    "reuse: the next one's parent is the new one");
	migcache_clear(&cache);
	migset_clear(&set);
	free(dir);
}

/* migdir_scan keeps what it could read, for one pass over every problem. */
static void
test_scan(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *got, *exp;

	mkd("scan", 0755);
	put("scan/0001.sql", "-- down_revision: none\n-- migrate:up\n"
	    "SELECT 1;\n", 0644);
	put("scan/0002.sql", "-- down_revision: 0001\n-- bogus: x\n"
	    "-- migrate:up\nSELECT 2;\n-- migrate:down\nSELECT 3;\n", 0644);
	put("scan/0003.sql", "-- down_revision: 0002\n-- migrate:up\n"
	    "SELECT \"\xff\";\n", 0644);
	put("scan/0004.sql", "-- down_revision: 0002\n-- migrate:up\n", 0666);
	dir = at("scan");
	is_int(migdir_scan(dir, &set, &el), -1, "scan: fails");
	got = join(&el);
	exp = expand("@/scan/0002.sql:2: unknown header 'bogus' (known: "
	    "revision, down_revision, message, transaction, depends_on, "
	    "branch_labels, unfinished)\n"
	    "@/scan/0003.sql:3: not valid UTF-8 (byte 0xff)\n"
	    "@/scan/0004.sql: refusing a migrations file writable by other "
	    "users (owner <me>, mode 0666): chmod o-w @/scan/0004.sql");
	is_str(got, exp, "scan: every problem");
	is_int(set.n, 1, "scan: the valid file kept");
	is_int(set.n_broken, 1, "scan: the file with a bad header kept");
	if (set.n_broken == 1) {
		is_str(set.broken[0]->revision, "0002", "scan: its id read");
		is_str(set.broken[0]->up, "SELECT 2;\n", "scan: its up read");
		is_str(set.broken[0]->down, "SELECT 3;\n",
		    "scan: its down read");
	}
	ok(set.incomplete, "scan: files not read at all are noted");
	migset_clear(&set);
	free(got);
	free(exp);
	errlist_clear(&el);
	is_int(migdir_load(dir, &set, &el), -1, "scan: load fails");
	ok(set.n == 0 && set.n_broken == 0 && set.files == NULL &&
	    set.broken == NULL, "scan: load leaves nothing");
	errlist_clear(&el);
	free(dir);
}

/* What is not read, and could have been meant to be, is said with why;
 * what never was (README, .git) is not. */
static void
test_skipped(void)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	char		*dir, *got, *exp;

	mkd("skip", 0755);
	put("skip/0001.sql", "-- down_revision: none\n-- migrate:up\n", 0644);
	mkd("skip/real", 0755);
	put("skip/real/0002.sql", "-- down_revision: 0001\n-- migrate:up\n",
	    0644);
	lnk("real", "skip/linked");
	lnk("real", "skip/linked.sql");
	put("skip/0003.SQL", "-- down_revision: 0002\n-- migrate:up\n", 0644);
	put("skip/.0004.sql", "-- down_revision: 0002\n-- migrate:up\n",
	    0644);
	lnk("0001.sql", "skip/.#0001.sql");
	mkd("skip/.git", 0755);
	put("skip/README", "not a migration", 0644);
	lnk("nowhere", "skip/dangling-notes");
	dir = at("skip");
	is_int(migdir_load(dir, &set, &el), 0, "skipped: the rest loads");
	is_int(set.n, 2, "skipped: 0001 and real/0002 read");
	is_int(el.n, 0, "skipped: no errors");
	got = errlist_join(&set.skipped, "\n");
	exp = expand("@/skip/.0004.sql: skipped: a hidden file (its name starts "
	    "with '.'); rename it to run it\n"
	    "@/skip/0003.SQL: skipped: only names ending in .sql, in lower case, "
	    "are migrations; rename it to run it\n"
	    "@/skip/linked: skipped: a symbolic link to a directory (migd does not "
	    "follow them: they may loop); move the directory here, or link "
	    "its files one by one\n"
	    "@/skip/linked.sql: skipped: a symbolic link to a directory (migd does "
	    "not follow them: they may loop); move the directory here, or "
	    "link its files one by one");
	is_str(got, exp, "skipped: each with its reason, in name order");
	free(got);
	free(exp);
	migset_clear(&set);
	is_int(set.skipped.n, 0, "skipped: cleared with the set");
	free(dir);
}


/* Open file descriptors of this process: a walk must leave none open. */
static int
fds_open(void)
{
	DIR		*d = opendir("/proc/self/fd");
	struct dirent	*de;
	int		 n = 0;

	if (d == NULL)
		return (-1);
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	return (n - 1);		/* the listing's own */
}

/* Set while a scan runs as nobody with root kept as the saved uid: the
 * changes a race test makes between the walk and the reads are root's. */
static int	 as_nobody;

/* Runs f as root (the test's own files), also from a scan as nobody. */
static void
as_owner(void (*f)(const char *, const char *), const char *rel,
    const char *text)
{
	if (as_nobody && seteuid(0) == -1)
		_exit(6);
	f(rel, text);
	if (as_nobody && seteuid(65534) == -1)
		_exit(6);
}

/* The changes of a race, each by name: removed, a directory or a FIFO in
 * its place, unreadable, rewritten, a link to a file others may write. */
static void
race_gone(const char *rel, const char *text)
{
	char	*path = at(rel);

	(void)text;
	if (unlink(path) == -1) {
		perror(path);
		_exit(7);
	}
	free(path);
}

static void
race_rmdir(const char *rel, const char *text)
{
	char	*path = at(rel);

	(void)text;
	if (rmdir(path) == -1) {
		perror(path);
		_exit(7);
	}
	free(path);
}

static void
race_dir(const char *rel, const char *text)
{
	char	*path = at(rel);

	(void)text;
	if (unlink(path) == -1 || mkdir(path, 0755) == -1) {
		perror(path);
		_exit(7);
	}
	free(path);
}

static void
race_fifo(const char *rel, const char *text)
{
	char	*path = at(rel);

	(void)text;
	if (unlink(path) == -1 || mkfifo(path, 0644) == -1) {
		perror(path);
		_exit(7);
	}
	free(path);
}

static void
race_unreadable(const char *rel, const char *text)
{
	char	*path = at(rel);

	(void)text;
	if (chmod(path, 0000) == -1) {
		perror(path);
		_exit(7);
	}
	free(path);
}

static void
race_put(const char *rel, const char *text)
{
	put(rel, text, 0644);
}

static void
race_link(const char *rel, const char *target)
{
	char	*path = at(rel);

	if (unlink(path) == -1 || symlink(target, path) == -1) {
		perror(path);
		_exit(7);
	}
	free(path);
}

/* A walk's changes: which case's, and whether they were made (once: a
 * relisted directory's walk calls the hook again). */
struct race {
	const char	*name;
	int		 calls;
};

/* Between the walk and the reads: the files the walk found change. */
static void
race_hook(void *arg)
{
	struct race	*r = arg;

	if (r->calls++ > 0)
		return;
	if (strcmp(r->name, "migd") == 0) {
		as_owner(race_gone, "race/0010.sql", NULL);
		as_owner(race_dir, "race/0020.sql", NULL);
		as_owner(race_fifo, "race/0030.sql", NULL);
		as_owner(race_unreadable, "race/0040.sql", NULL);
		as_owner(race_put, "race/0050.sql", "-- down_revision: 0049\n"
		    "-- message: edited after the walk\n-- migrate:up\n"
		    "SELECT 50;\n");
		as_owner(race_link, "race/0060.sql", "../race-ww.sql");
	} else if (strcmp(r->name, "golang-migrate") == 0) {
		as_owner(race_gone, "racegm/000010_t.down.sql", NULL);
		as_owner(race_dir, "racegm/000020_t.up.sql", NULL);
		as_owner(race_unreadable, "racegm/000030_t.down.sql", NULL);
		as_owner(race_put, "racegm/000040_t.down.sql",
		    "DROP TABLE t40 CASCADE;\n");
	} else if (strcmp(r->name, "diesel") == 0) {
		as_owner(race_gone, "raceds/2024-01-01-000010_t/up.sql", NULL);
		as_owner(race_dir, "raceds/2024-01-01-000020_t/up.sql", NULL);
		as_owner(race_gone, "raceds/2024-01-01-000030_t/up.sql", NULL);
		as_owner(race_gone, "raceds/2024-01-01-000030_t/down.sql",
		    NULL);
		as_owner(race_rmdir, "raceds/2024-01-01-000030_t", NULL);
		as_owner(race_unreadable, "raceds/2024-01-01-000040_t/down.sql",
		    NULL);
		as_owner(race_put, "raceds/2024-01-01-000050_t/metadata.toml",
		    "run_in_transaction = false\n");
	}
}

/* What a scan gave, as text to compare: counts, each file (path under
 * top, revision, parent, down file, tx, message), the messages, the
 * skipped, the descriptors left open. */
static char *
scan_text(const char *rel, int format, struct race *r)
{
	struct errlist	 el = { NULL, 0 };
	struct migset	 set;
	struct migfile	*mf;
	char		*dir = at(rel), *s, *t, *e, *k;
	size_t		 i, n = strlen(top) + 1;
	int		 fds = fds_open(), rc;

	rc = migdir_scan_between(dir, format, &set, &el, NULL,
	    r != NULL ? race_hook : NULL, r);
	s = xprintf("rc %d, %zu files, %zu broken, incomplete %d, %d "
	    "descriptors left open\n", rc, set.n, set.n_broken,
	    set.incomplete, fds_open() - fds);
	for (i = 0; i < set.n + set.n_broken; i++) {
		mf = i < set.n ? set.files[i] : set.broken[i - set.n];
		t = xprintf("%s%s%s %s < %s%s%s%s%s%s\n", s, i < set.n ? "" :
		    "broken ", mf->path + n, mf->revision ? mf->revision : "?",
		    mf->n_parents ? mf->parents[0] : "none",
		    mf->down_path ? ", down " : "", mf->down_path ?
		    mf->down_path + n : "", mf->tx == MIGFILE_TX_NONE ?
		    ", no transaction" : "", *mf->message ? ": " : "",
		    mf->message);
		free(s);
		s = t;
	}
	e = errlist_join(&el, "\n");
	k = errlist_join(&set.skipped, "\n");
	t = xprintf("%serrors:\n%s\nskipped:\n%s\n", s, e, k);
	free(s);
	free(e);
	free(k);
	migset_clear(&set);
	errlist_clear(&el);
	free(dir);
	return (t);
}

/* scan_text as nobody (when root), keeping root as the saved uid for the
 * race's changes: an unreadable file is one only for someone else. */
static char *
scan_as(const char *rel, int format, struct race *r)
{
	char	 buf[65536], *s;
	size_t	 len = 0;
	ssize_t	 got;
	pid_t	 pid;
	int	 p[2], status = -1;

	if (geteuid() != 0)
		return (scan_text(rel, format, r));
	if (pipe(p) == -1 || chmod(top, 0711) == -1) {
		perror("pipe");
		exit(2);
	}
	fflush(stdout);
	if ((pid = fork()) == 0) {
		close(p[0]);
		if (setgroups(0, NULL) != 0 || setresgid(65534, 65534, 0) !=
		    0 || setresuid(65534, 65534, 0) != 0)
			_exit(3);
		as_nobody = 1;
		s = scan_text(rel, format, r);
		if (write(p[1], s, strlen(s)) != (ssize_t)strlen(s))
			_exit(4);
		free(s);
		_exit(0);
	}
	close(p[1]);
	while (len + 1 < sizeof buf && (got = read(p[0], buf + len,
	    sizeof buf - len - 1)) > 0)
		len += (size_t)got;
	buf[len] = '\0';
	close(p[0]);
	waitpid(pid, &status, 0);
	chmod(top, 0700);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return (xprintf("the scan as nobody failed: status %d\n%s",
		    status, buf));
	return (xstrdup(buf));
}

/* Whether a scan's text starts with its counts as want says them; the
 * whole text shown when not. */
static int
counts(const char *text, const char *want)
{
	if (strncmp(text, want, strlen(want)) == 0)
		return (1);
	printf("# the scan gave:\n%s", text);
	return (0);
}

/* Whether a scan's text has a line; the whole text shown when not. */
static int
has_line(const char *text, const char *line)
{
	if (strstr(text, line) != NULL)
		return (1);
	printf("# no line '%s' in:\n%s", line, text);
	return (0);
}

/* The part of a scan's text from "errors:" on. */
static const char *
messages(const char *text)
{
	const char	*m = strstr(text, "errors:\n");

	return (m != NULL ? m : text);
}

/* Files that change between the walk and their read (removed, a directory
 * or a FIFO in their place, unreadable, edited, a link to a file others
 * may write), read on several threads: each said as before, in file
 * order, everything else read, nothing left open. */
static void
test_race(void)
{
	struct race	 r;
	char		 rel[64], text[256], *got, *exp, *base;
	size_t		 i;

	mkd("race", 0755);
	for (i = 1; i <= 100; i++) {
		snprintf(rel, sizeof rel, "race/%04zu.sql", i);
		if (i == 1)
			snprintf(text, sizeof text, "-- down_revision: none\n"
			    "-- migrate:up\nSELECT %zu;\n", i);
		else
			snprintf(text, sizeof text, "-- down_revision: %04zu\n"
			    "-- migrate:up\nSELECT %zu;\n", i - 1, i);
		put(rel, text, 0644);
	}
	put("race-ww.sql", "-- down_revision: 0059\n-- migrate:up\n", 0666);
	memset(&r, 0, sizeof r);
	r.name = "migd";
	got = scan_as("race", LAYOUT_AUTO, &r);
	exp = expand("errors:\n"
	    "@/race/0010.sql: No such file or directory\n"
	    "@/race/0020.sql: not a regular file\n"
	    "@/race/0030.sql: not a regular file\n"
	    "@/race/0040.sql: Permission denied\n"
	    "@/race/0060.sql: refusing a migrations file writable by other "
	    "users (owner <me>, mode 0666): chmod o-w @/race/0060.sql\n"
	    "skipped:\n\n");
	is_str(messages(got), exp, "race (migd): each change said, in order");
	ok(counts(got, "rc -1, 95 files, 0 broken, incomplete 1, 0 "
	    "descriptors left open\n"), "race (migd): the other 95 "
	    "read, the set incomplete, nothing left open");
	ok(has_line(got, "\nrace/0050.sql 0050 < 0049: edited after the "
	    "walk\n") && has_line(got, "\nrace/0051.sql 0051 < 0050\n"),
	    "race (migd): the edited file read as it is now");
	free(got);
	free(exp);

	/* golang-migrate: each file of a pair on its own. */
	mkd("racegm", 0755);
	for (i = 1; i <= 100; i++) {
		snprintf(rel, sizeof rel, "racegm/%06zu_t.up.sql", i);
		snprintf(text, sizeof text, "CREATE TABLE t%zu ();\n", i);
		put(rel, text, 0644);
		snprintf(rel, sizeof rel, "racegm/%06zu_t.down.sql", i);
		snprintf(text, sizeof text, "DROP TABLE t%zu;\n", i);
		put(rel, text, 0644);
	}
	memset(&r, 0, sizeof r);
	r.name = "golang-migrate";
	got = scan_as("racegm", LAYOUT_GOLANG_MIGRATE, &r);
	exp = expand("errors:\n"
	    "@/racegm/000010_t.down.sql: No such file or directory\n"
	    "@/racegm/000020_t.up.sql: not a regular file\n"
	    "@/racegm/000030_t.down.sql: Permission denied\n"
	    "@/racegm/000020_t.down.sql: a down file without its up file "
	    "(version 20)\n"
	    "skipped:\n\n");
	is_str(messages(got), exp, "race (golang-migrate): each change said, "
	    "in order");
	ok(counts(got, "rc -1, 99 files, 0 broken, incomplete 1, 0 "
	    "descriptors left open\n"), "race (golang-migrate): the "
	    "rest read, nothing left open");
	ok(has_line(got, "\nracegm/000010_t.up.sql 10 < 9: t\n") &&
	    has_line(got, "\nracegm/000021_t.up.sql 21 < 19, down "
	    "racegm/000021_t.down.sql: t\n") &&
	    has_line(got, "\nracegm/000030_t.up.sql 30 < 29: t\n"),
	    "race (golang-migrate): a pair without its down, a chain past "
	    "the lost up");
	free(got);
	free(exp);

	/* diesel, by name: a directory that lost its up.sql is listed (as
	 * one without it from the start), a removed one said. */
	mkd("raceds", 0755);
	for (i = 1; i <= 100; i++) {
		snprintf(rel, sizeof rel, "raceds/2024-01-01-%06zu_t", i);
		mkd(rel, 0755);
		snprintf(rel, sizeof rel, "raceds/2024-01-01-%06zu_t/up.sql",
		    i);
		snprintf(text, sizeof text, "CREATE TABLE t%zu ();\n", i);
		put(rel, text, 0644);
		snprintf(rel, sizeof rel,
		    "raceds/2024-01-01-%06zu_t/down.sql", i);
		snprintf(text, sizeof text, "DROP TABLE t%zu;\n", i);
		put(rel, text, 0644);
	}
	memset(&r, 0, sizeof r);
	r.name = "diesel";
	got = scan_as("raceds", LAYOUT_DIESEL, &r);
	exp = expand("errors:\n"
	    "@/raceds/2024-01-01-000030_t: No such file or directory\n"
	    "@/raceds/2024-01-01-000040_t/down.sql: Permission denied\n"
	    "@/raceds/2024-01-01-000010_t/down.sql: a down file without its "
	    "up file (version 20240101000010)\n"
	    "@/raceds/2024-01-01-000020_t/down.sql: a down file without its "
	    "up file (version 20240101000020)\n"
	    "skipped:\n\n");
	is_str(messages(got), exp, "race (diesel): each change said, in "
	    "order");
	ok(counts(got, "rc -1, 97 files, 0 broken, incomplete 1, 0 "
	    "descriptors left open\n"), "race (diesel): the rest "
	    "read, nothing left open");
	ok(has_line(got, "\nraceds/2024-01-01-000050_t/up.sql 20240101000050 "
	    "< 20240101000049, down raceds/2024-01-01-000050_t/down.sql, no "
	    "transaction: t\n"), "race (diesel): a metadata.toml made "
	    "after the walk is read");
	/* The same tree loaded afresh: what a load after the changes says
	 * (less the file nobody may read, and the directory gone). */
	base = scan_as("raceds", LAYOUT_DIESEL, NULL);
	free(exp);
	exp = expand("errors:\n"
	    "@/raceds/2024-01-01-000040_t/down.sql: Permission denied\n"
	    "@/raceds/2024-01-01-000010_t/down.sql: a down file without its "
	    "up file (version 20240101000010)\n"
	    "@/raceds/2024-01-01-000020_t/down.sql: a down file without its "
	    "up file (version 20240101000020)\n"
	    "skipped:\n\n");
	is_str(messages(base), exp, "race (diesel): a load afresh says the "
	    "same of the files that are there");
	*strstr(got, "errors:\n") = '\0';
	*strstr(base, "errors:\n") = '\0';
	is_str(got, base, "race (diesel): the same files as afresh");
	free(base);
	free(got);
	free(exp);
}

/* Problems the walk finds (a FIFO, a name in upper case) and problems a
 * worker finds (a file others may write, text that is not UTF-8, a name
 * the layout does not read), from 480 files read on several threads:
 * every one in file order, as one thread reading them in turn says them. */
static void
test_order(void)
{
	struct errlist	 errs = { NULL, 0 }, skips = { NULL, 0 };
	struct errlist	 late = { NULL, 0 };
	char		 rel[64], text[128], *got, *exp, *want, *path;
	size_t		 i, n = 120, k;

	mkd("order", 0755);
	for (i = 1; i <= n; i++) {
		if (i % 15 == 4) {
			snprintf(rel, sizeof rel, "order/%06zu_notes.sql", i);
			put(rel, "-- notes\n", 0644);
			errlist_add(&skips, "@/%s: skipped: not a golang-migrate "
			    "migration name (VERSION_name.up.sql and "
			    "VERSION_name.down.sql)", rel);
		}
		if (i % 20 == 11) {
			snprintf(rel, sizeof rel, "order/%06zu_t.UP.SQL", i);
			put(rel, "SELECT 1;\n", 0644);
			errlist_add(&skips, "@/%s: skipped: only names ending in "
			    ".sql, in lower case, are migrations; rename it to "
			    "run it", rel);
		}
		snprintf(rel, sizeof rel, "order/%06zu_t.down.sql", i);
		if (i % 30 == 9) {
			put(rel, "DROP TABLE \"\xff\";\n", 0644);
			errlist_add(&errs, "@/%s:1: not valid UTF-8 (byte 0xff)",
			    rel);
		} else {
			snprintf(text, sizeof text, "DROP TABLE t%zu;\n", i);
			put(rel, text, 0644);
		}
		if (i % 25 == 7) {
			snprintf(rel, sizeof rel, "order/%06zu_t.fifo.sql", i);
			path = at(rel);
			if (mkfifo(path, 0644) == -1) {
				perror(path);
				exit(2);
			}
			free(path);
			errlist_add(&errs, "@/%s: not a regular file", rel);
		}
		snprintf(rel, sizeof rel, "order/%06zu_t.up.sql", i);
		snprintf(text, sizeof text, "CREATE TABLE t%zu ();\n", i);
		if (i % 10 == 3) {
			put(rel, text, 0646);
			errlist_add(&errs, "@/%s: refusing a migrations file "
			    "writable by other users (owner <me>, mode 0646): "
			    "chmod o-w @/%s", rel, rel);
			errlist_add(&late, "@/order/%06zu_t.down.sql: a down "
			    "file without its up file (version %zu)", i, i);
		} else
			put(rel, text, 0644);
	}
	for (k = 0; k < late.n; k++)
		errlist_add(&errs, "%s", late.v[k]);
	got = scan_text("order", LAYOUT_GOLANG_MIGRATE, NULL);
	want = errlist_join(&errs, "\n");
	path = errlist_join(&skips, "\n");
	exp = xprintf("errors:\n%s\nskipped:\n%s\n", want, path);
	free(want);
	free(path);
	want = expand(exp);
	is_str(messages(got), want, "order: %zu problems and %zu skipped, "
	    "from the walk and from the workers, in file order", errs.n,
	    skips.n);
	ok(counts(got, "rc -1, 108 files, 0 broken, incomplete 1, 0 "
	    "descriptors left open\n"), "order: the rest read");
	free(want);
	free(exp);
	free(got);
	errlist_clear(&errs);
	errlist_clear(&skips);
	errlist_clear(&late);
}

/* The most descriptors open at a flush of the walk (the hook's count). */
static void
fds_peak(void *arg)
{
	int	*peak = arg, n = fds_open();

	if (n > *peak)
		*peak = n;
}

/* Many directories: their files read in batches while the walk goes on
 * (a directory stays open until its files are read, and no more than a
 * few hundred at once), their problems still in file order; diesel's
 * metadata.toml, found by listing (format = auto), still decides the
 * transaction of its own directory's files only. */
static void
test_many_dirs(void)
{
	struct errlist	 el = { NULL, 0 }, errs = { NULL, 0 };
	struct migset	 set;
	char		 rel[96], text[160], *dir, *got, *want;
	size_t		 i, k, notx = 0;
	int		 peak = 0, before = fds_open(), rc;

	/* 100 directories of 2 files at the top, then one directory of 300
	 * directories of one file. */
	mkd("dirs", 0755);
	mkd("dirs/zz", 0755);
	for (i = 0; i < 400; i++) {
		if (i < 100) {
			snprintf(rel, sizeof rel, "dirs/d%03zu", i);
			mkd(rel, 0755);
			snprintf(rel, sizeof rel, "dirs/d%03zu/a.sql", i);
			snprintf(text, sizeof text, "-- revision: a%03zu\n"
			    "-- down_revision: %s%03zu\n-- migrate:up\n", i,
			    i == 0 ? "none" : "b", i == 0 ? 0 : i - 1);
			if (i == 0)
				snprintf(text, sizeof text, "-- revision: a000"
				    "\n-- down_revision: none\n-- migrate:up\n");
			put(rel, text, 0644);
			snprintf(rel, sizeof rel, "dirs/d%03zu/b.sql", i);
			snprintf(text, sizeof text, "-- revision: b%03zu\n"
			    "-- down_revision: a%03zu\n%s-- migrate:up\n", i, i,
			    i % 33 == 8 ? "-- bogus: 1\n" : "");
			put(rel, text, i % 41 == 9 ? 0666 : 0644);
		} else {
			snprintf(rel, sizeof rel, "dirs/zz/e%03zu", i);
			mkd(rel, 0755);
			snprintf(rel, sizeof rel, "dirs/zz/e%03zu/c.sql", i);
			snprintf(text, sizeof text, "-- revision: c%03zu\n"
			    "-- down_revision: %s%03zu\n%s-- migrate:up\n", i,
			    i == 100 ? "b" : "c", i - 1, i % 77 == 20 ?
			    "-- bogus: 1\n" : "");
			put(rel, text, 0644);
		}
		if (i < 100 && i % 41 == 9)
			errlist_add(&errs, "@/dirs/d%03zu/b.sql: refusing a "
			    "migrations file writable by other users (owner "
			    "<me>, mode 0666): chmod o-w @/dirs/d%03zu/b.sql",
			    i, i);
		if ((i < 100 && i % 33 == 8) || (i >= 100 && i % 77 == 20))
			errlist_add(&errs, "@/dirs/%s%03zu/%s.sql:%d: unknown "
			    "header 'bogus' (known: revision, down_revision, "
			    "message, transaction, depends_on, branch_labels, "
			    "unfinished)", i < 100 ? "d" : "zz/e", i,
			    i < 100 ? "b" : "c", 3);
	}
	dir = at("dirs");
	rc = migdir_scan_between(dir, LAYOUT_AUTO, &set, &el, NULL, fds_peak,
	    &peak);
	is_int(rc, -1, "many dirs: refused (the problems below)");
	got = join(&el);
	want = errlist_join(&errs, "\n");
	free(dir);
	dir = expand(want);
	is_str(got, dir, "many dirs: every problem, in file order");
	free(got);
	free(want);
	free(dir);
	is_int(set.n + set.n_broken, 500 - 3, "many dirs: every file read "
	    "but those refused unread");
	is_int(set.n_dirs, 402, "many dirs: every directory to watch");
	ok(peak > before && peak - before <= 256 + 8, "many dirs: at most "
	    "a few hundred directories open at once (%d)", peak - before);
	is_int(fds_open(), before, "many dirs: nothing left open");
	migset_clear(&set);
	errlist_clear(&el);
	errlist_clear(&errs);

	/* diesel's directories listed (auto), more than one batch of them. */
	mkd("autods", 0755);
	for (i = 1; i <= 150; i++) {
		snprintf(rel, sizeof rel, "autods/2024-02-01-%06zu_m", i);
		mkd(rel, 0755);
		snprintf(rel, sizeof rel, "autods/2024-02-01-%06zu_m/up.sql", i);
		put(rel, "SELECT 1;\n", 0644);
		snprintf(rel, sizeof rel, "autods/2024-02-01-%06zu_m/down.sql",
		    i);
		put(rel, "SELECT 2;\n", 0644);
		if (i % 7 == 2 || i % 11 == 5) {
			snprintf(rel, sizeof rel,
			    "autods/2024-02-01-%06zu_m/metadata.toml", i);
			put(rel, i % 7 == 2 ? "run_in_transaction = false\n" :
			    "run_in_transaction = true\n", 0644);
			notx += i % 7 == 2;
		}
	}
	dir = at("autods");
	rc = migdir_scan_format(dir, LAYOUT_AUTO, &set, &el, NULL);
	got = join(&el);
	is_str(got, "", "auto diesel: no problem");
	free(got);
	is_int(rc, 0, "auto diesel: loads");
	is_int(set.format, LAYOUT_DIESEL, "auto diesel: detected");
	for (i = k = 0; i < set.n; i++) {
		if ((set.files[i]->tx == MIGFILE_TX_NONE) != ((i + 1) % 7 ==
		    2))
			k++;
	}
	ok(set.n == 150 && k == 0, "auto diesel: run_in_transaction = false "
	    "in %zu directories, and only there (%zu wrong)", notx, k);
	is_int(set.n_extra, notx + 150 / 11 + 1 - 2, "auto diesel: every "
	    "metadata.toml watched");
	is_int(set.n_dirs, 151, "auto diesel: every directory watched");
	ok(migset_unchanged(&set), "auto diesel: each watched as it was");
	migset_clear(&set);
	/* Read by name (format = diesel), the lists grown many times. */
	rc = migdir_scan_format(dir, LAYOUT_DIESEL, &set, &el, NULL);
	is_int(rc, 0, "diesel, 150 directories: loads");
	is_int(set.n_dirs, 151, "diesel, 150 directories: each watched");
	is_int(set.n_extra, notx + 150 / 11 + 1 - 2, "diesel, 150 "
	    "directories: every metadata.toml watched");
	for (i = 1, k = 0; i < set.n_dirs; i++)
		k += strstr(set.dirs[i], "autods/2024-02-01-") == NULL ||
		    (size_t)atoi(set.dirs[i] + strlen(set.dirs[i]) - 8) != i;
	ok(k == 0, "diesel, 150 directories: in order (%zu not)", k);
	ok(migset_unchanged(&set), "diesel, 150 directories: each watched "
	    "as it was");
	touch_later("autods/2024-02-01-000149_m/metadata.toml", 7);
	ok(!migset_unchanged(&set), "diesel, 150 directories: an edited "
	    "metadata.toml late in the list shows");
	migset_clear(&set);
	errlist_clear(&el);
	free(dir);
}

int
main(void)
{
	char	 tmpl[] = "/tmp/test_migdir.XXXXXX";

	umask(022);
	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		return (2);
	}
	top = tmpl;

	test_good_tree();
	test_broken();
	test_permissions();
	test_other();
	test_signature();
	test_scan();
	test_skipped();
	test_layouts();
	test_diesel();
	test_reuse();
	test_race();
	test_order();
	test_many_dirs();

	if (nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS) == -1)
		perror(top);
	return (done_testing());
}
