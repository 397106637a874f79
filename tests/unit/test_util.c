/* Unit tests of util.c's helpers that guard what migd shows and trusts:
 * the escaping of control characters for the log, and path_trusted. */
#include <sys/stat.h>

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "util.h"

/* Text from a client or a file, and what the log line gets. */
static void
test_escape(void)
{
	static const struct {
		const char	*in, *want, *what;
	} cases[] = {
		{ "plain text, 'quotes' and \\ stay", "plain text, 'quotes' "
		    "and \\ stay", "printable ASCII unchanged" },
		{ "x\n2026-11-30 12:00:00 error: fake line",
		    "x\\n2026-11-30 12:00:00 error: fake line", "newline" },
		{ "a\r\nb\tc", "a\\r\\nb\\tc", "CR, LF, tab" },
		{ "\x1b[2J\x1b]0;title\x07", "\\x1b[2J\\x1b]0;title\\x07",
		    "ESC sequences and BEL" },
		{ "del\x7f nul-less \x01\x1f", "del\\x7f nul-less \\x01\\x1f",
		    "DEL and other C0" },
		{ "csi \xc2\x9b" "31m next \xc2\x85", "csi \\u009b31m next "
		    "\\u0085", "C1 controls as UTF-8" },
		{ "raw \x9b" "31m", "raw \\x9b31m", "a raw C1 byte (not UTF-8)" },
		{ "bad \xff\xfe utf", "bad \\xff\\xfe utf", "invalid UTF-8" },
		{ "trunc \xe2\x82", "trunc \\xe2\\x82", "truncated sequence" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
		    "valid UTF-8 letters and symbols unchanged" },
		{ "ls\xe2\x80\xa8ps\xe2\x80\xa9", "ls\\u2028ps\\u2029",
		    "line and paragraph separators" },
		{ "", "", "empty" },
	};
	size_t	 i;
	char	*got;

	for (i = 0; i < nitems(cases); i++) {
		got = utf8_escape_controls(cases[i].in);
		is_str(got, cases[i].want, "escape: %s", cases[i].what);
		ok(strpbrk(got, "\n\r\x1b") == NULL, "escape: %s: one line",
		    cases[i].what);
		free(got);
	}
}

/* Runs path_trusted on a made-up stat; returns its messages joined. */
static char *
trust(uid_t uid, gid_t gid, mode_t mode, int *verdict)
{
	struct errlist	 el = { NULL, 0 };
	struct stat	 st;
	char		*s;

	memset(&st, 0, sizeof st);
	st.st_uid = uid;
	st.st_gid = gid;
	st.st_mode = S_IFREG | mode;
	*verdict = path_trusted(&st, "/etc/migd/migd.conf",
	    "configuration file", &el);
	s = errlist_join(&el, "|");
	errlist_clear(&el);
	return (s);
}

/* StrictModes: owner root or migd's user, not writable by others. */
static void
test_trusted(void)
{
	struct passwd	*pw = getpwuid(geteuid());
	const char	*me = pw != NULL ? pw->pw_name : "?";
	char		*got, *want;
	int		 v;

	got = trust(0, 0, 0640, &v);
	ok(v == 1 && *got == '\0', "root 0640: trusted");
	free(got);
	got = trust(geteuid(), 0, 0600, &v);
	ok(v == 1 && *got == '\0', "migd's own user 0600: trusted");
	free(got);
	got = trust(0, 0, 0644, &v);
	ok(v == 1, "readable by others is not a refusal (a warning, if it "
	    "holds a password)");
	free(got);

	got = trust(0, 0, 0646, &v);
	is_int(v, 0, "world-writable: refused");
	want = xprintf("/etc/migd/migd.conf: refusing a configuration file "
	    "writable by other users (owner root, mode 0646): chmod o-w "
	    "/etc/migd/migd.conf");
	is_str(got, want, "world-writable: names the file, owner, mode, fix");
	free(want);
	free(got);

	got = trust(0, 0, 01777, &v);
	is_int(v, 0, "world-writable with the sticky bit: still refused");
	free(got);

	if (geteuid() != 0) {
		got = trust(0, 0, 0644, &v);
		ok(v == 1, "root's file trusted by another user");
		free(got);
	}
	/* A uid nobody has: named by number. */
	got = trust(4000000000u == geteuid() ? 4000000001u : 4000000000u, 0,
	    0644, &v);
	is_int(v, 0, "owned by another user: refused");
	want = xprintf("/etc/migd/migd.conf: refusing a configuration file "
	    "owned by uid %u (mode 0644), not by root or migd's user %s: "
	    "uid %u could change what migd does (chown root "
	    "/etc/migd/migd.conf)", 4000000000u == geteuid() ? 4000000001u :
	    4000000000u, me, 4000000000u == geteuid() ? 4000000001u :
	    4000000000u);
	is_str(got, want, "another owner: names the file, owner, mode, fix");
	free(want);
	free(got);

	/* root's group 0 is not root's private group by name ("root" is,
	 * when it has no members): a group-writable file in a shared group
	 * is refused. */
	got = trust(0, 4000000000u, 0664, &v);
	is_int(v, 0, "group-writable, group not the owner's: refused");
	ok(strstr(got, "writable by group ? (owner root, mode 0664): chmod "
	    "g-w /etc/migd/migd.conf") != NULL, "group-writable: message: %s",
	    got);
	free(got);
}

/* The lock retries' waits: doubling, capped, jittered within half. */
static void
test_backoff(void)
{
	int	 r, in = 1;
	long	 w;
	unsigned long	 rnd;

	is_int(backoff_jittered(200, 10000, 1, 0), 100,
	    "first retry, least jitter: half the base");
	is_int(backoff_jittered(200, 10000, 1, 100), 200,
	    "first retry, most jitter: the base");
	is_int(backoff_jittered(200, 10000, 3, 400), 800,
	    "third retry: base doubled twice");
	is_int(backoff_jittered(200, 1000, 10, 500), 1000,
	    "the cap holds");
	is_int(backoff_jittered(200, 1000, 1000000, 0), 500,
	    "a huge retry number neither overflows nor passes the cap");
	is_int(backoff_jittered(0, 1000, 3, 7), 0, "no base: no wait");
	is_int(backoff_jittered(500, 0, 3, 7), 0, "a zero cap: no wait");
	is_int(backoff_jittered(500, 300, 1, 0), 150,
	    "a cap under the base wins");
	for (r = 1; r <= 8; r++) {
		for (rnd = 0; rnd < 2000; rnd += 37) {
			w = backoff_jittered(100, 5000, r, rnd);
			if (w < 50 || w > 5000)
				in = 0;
		}
	}
	ok(in, "every wait between half the base and the cap");
}

/* parallel_each: each index once, whatever the threads. */
static void
parallel_mark(void *arg, size_t i)
{
	((unsigned char *)arg)[i]++;
}

static void
test_parallel(void)
{
	static unsigned char	 seen[5000];
	size_t			 sizes[] = { 0, 1, 63, 64, 5000 }, k, i, bad;

	for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		memset(seen, 0, sizeof seen);
		parallel_each(sizes[k], parallel_mark, seen);
		for (i = bad = 0; i < sizeof seen; i++)
			bad += seen[i] != (i < sizes[k] ? 1 : 0);
		is_int((int)bad, 0, "parallel_each(%zu): each index once",
		    sizes[k]);
	}
}

/* What sort_runs is given: a key, and where it was, to check stability. */
struct sorted_item {
	int	 key;
	int	 at;
};

static size_t	 sort_compares;

static int
sort_cmp(const void *a, const void *b)
{
	const struct sorted_item	*x = a, *y = b;

	sort_compares++;
	return (x->key < y->key ? -1 : x->key > y->key);
}

/* sort_runs: qsort's order, equal keys in their first order, and n - 1
 * comparisons for an array in order, 3n/2 with neighbours swapped. */
static void
test_sort_runs(void)
{
	static const size_t	 sizes[] = { 0, 1, 2, 3, 7, 64, 1000, 4097 };
	struct sorted_item	*v;
	size_t			 k, i, n, bad;
	unsigned int		 seed = 7;

	for (k = 0; k < nitems(sizes); k++) {
		n = sizes[k];
		v = xcalloc(n + 1, sizeof *v);
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245 + 12345;
			v[i].key = (int)((seed >> 16) % 50);
			v[i].at = (int)i;
		}
		sort_runs(v, n, sizeof *v, sort_cmp);
		for (i = 1, bad = 0; i < n; i++)
			bad += v[i - 1].key > v[i].key || (v[i - 1].key ==
			    v[i].key && v[i - 1].at > v[i].at);
		is_int((int)bad, 0, "sort_runs(%zu random keys): in order, "
		    "equal keys as they came", n);
		/* In order: one comparison per neighbour. */
		for (i = 0; i < n; i++)
			v[i].key = (int)i;
		sort_compares = 0;
		sort_runs(v, n, sizeof *v, sort_cmp);
		ok(sort_compares <= (n > 0 ? n - 1 : 0), "sort_runs(%zu in "
		    "order): %zu comparisons", n, sort_compares);
		/* Each pair swapped (a down file named before its up). */
		for (i = 0; i + 1 < n; i += 2) {
			v[i].key = (int)i + 1;
			v[i + 1].key = (int)i;
		}
		sort_compares = 0;
		sort_runs(v, n, sizeof *v, sort_cmp);
		for (i = 1, bad = 0; i < n; i++)
			bad += v[i - 1].key > v[i].key;
		ok(bad == 0 && sort_compares <= n + n / 2, "sort_runs(%zu, "
		    "neighbours "
		    "swapped): in order, %zu comparisons", n, sort_compares);
		free(v);
	}
}

int
main(void)
{
	test_escape();
	test_trusted();
	test_backoff();
	test_parallel();
	test_sort_runs();
	return (done_testing());
}
