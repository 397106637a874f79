/*
 * migctl's command table and its options: the one place a command is added
 * or described; migctl(1), `migctl help` and the bash completion follow it.
 */
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "config.h"
#include "migctl.h"
#include "migd/protocol.h"
#include "util.h"

/* The exit codes every command that asks migd shares; the commands that
 * change the database have their own 5 and 6. */
#define EXITS_2_3	"  2  usage error\n  3  migd unreachable\n"
#define EXITS_5_6	"  5  migd is busy (too many clients)\n" \
	"  6  not allowed (forbidden)\n"
#define EXITS_RUN_5_6	"  5  another run held the migration lock past " \
	"lock_wait, or migd is busy\n  6  not allowed: it needs root, migd's " \
	"user or admin_group\n"
#define EXITS_7		"  7  the socket's listener is not the expected migd\n"
#define EXITS_ASK	EXITS_2_3 EXITS_5_6 EXITS_7
#define EXITS_RUN	EXITS_2_3 EXITS_RUN_5_6 EXITS_7

/* Every command migctl knows, and its help: the one place a command is
 * added or described (migctl(1) and the bash completion follow it). */
const struct migctl_cmd migctl_cmds[] = {
	{ .name = "status", .method = "status", .usage = "status [--all]",
	  .summary = "daemon, database and migration state",
	  .about = "  The daemon (version, pid, uptime), the database (connected, "
	    "server,\n  pool, last error), the migration files (directory, "
	    "revisions, heads,\n  problems) and the state.  Answers while "
	    "PostgreSQL is down and while a\n  migration runs; 'migctl check' "
	    "branches on the state.\n\n  With --all, a line per database: "
	    "name, state, current, pending and\n  its last run.  A database "
	    "with no connection up answers from the\n  state its last status "
	    "or run read, saying how old it is; --fresh\n  reads every "
	    "database now (a connection each, within the cap).\n",
	  .examples = "  migctl status\n  migctl --json status | jq -r .state\n"
	    "  migctl status --all\n  migctl status --all --fresh\n",
	  .exits = "  0  answered, whatever the state\n  1  failed\n" EXITS_ASK,
	  .flags = ARG_ALL | ARG_FRESH, .print = out_status },
	{ .name = "current", .method = "current", .usage = "current",
	  .summary = "the revisions the database is at",
	  .about = "  The revisions the database is at, read fresh, with what is "
	    "pending,\n  drifted, dirty or unknown.  With invalid files it answers "
	    "from the\n  last valid set of files, and says so.\n",
	  .examples = "  migctl current\n  migctl --json current | jq -r "
	    "'.current[].revision'\n",
	  .exits = "  0  answered\n  1  failed (no database)\n" EXITS_ASK,
	  .print = out_current },
	{ .name = "heads", .method = "heads", .usage = "heads",
	  .summary = "the newest revisions of the files",
	  .about = "  The heads of the migration files (the revisions nothing "
	    "builds on), and\n  whether each is applied.  With invalid files, "
	    "from the last valid set.\n",
	  .examples = "  migctl heads\n",
	  .exits = "  0  answered\n  1  failed\n" EXITS_ASK,
	  .print = out_heads },
	{ .name = "history", .method = "history",
	  .usage = "history [REV] [--limit N]",
	  .summary = "what ran, when, for whom",
	  .about = "  What ran, newest first: id, start (UTC), action, revision, "
	    "result,\n  duration and who asked; a failed migration's error under "
	    "its row.\n  (What 'alembic history' prints, the revision graph, is "
	    "'migctl revisions'.)\n",
	  .arguments = "  REV  only this revision's rows: an id or a unique prefix "
	    "of one, of a\n       file or of the history; unknown or ambiguous is "
	    "an error\n",
	  .examples = "  migctl history\n  migctl history --limit 10\n"
	    "  migctl history 3f2a\n",
	  .exits = "  0  answered, also when nothing ran yet\n  1  REV is unknown "
	    "or ambiguous, or the history cannot be read\n" EXITS_ASK,
	  .max_args = 1, .flags = ARG_LIMIT, .params = params_history,
	  .print = out_history },
	{ .name = "plan", .method = "plan",
	  .usage = "plan [TARGET] [--[no-]atomic] [--allow-drift]",
	  .summary = "what an upgrade or downgrade would run",
	  .about = "  What 'upgrade' or 'downgrade' to TARGET would run, in order, "
	    "and why:\n  whether each step runs in a transaction, the schemas to "
	    "create, and\n  what would stop the run (\"cannot run: ...\", exit 4)."
	    "  Runs nothing;\n  the direction follows from the target.\n",
	  .arguments = "  TARGET  " TARGETS ";\n          default head\n",
	  .examples = "  migctl plan\n  migctl plan base\n"
	    "  migctl plan --atomic && migctl upgrade --atomic\n",
	  .exits = "  0  the plan can run, or there is nothing to do\n  1  no "
	    "plan: invalid files, an unknown target, no database\n" EXITS_2_3
	    "  4  the plan cannot run: drift, dirty, ahead, no down section, "
	    "not\n     atomic (\"cannot run:\")\n" EXITS_5_6 EXITS_7,
	  .max_args = 1, .flags = ARG_DRIFT | ARG_ATOMIC,
	  .params = params_target, .print = out_plan, .exit_code = exit_plan },
	{ .name = "upgrade", .method = "upgrade",
	  .usage = "upgrade [TARGET] [--dry-run] [--[no-]atomic] [--wait-daemon "
	    "S]\n"
	    "upgrade --sql [FROM:]TO [-d DIR|-c CONFIG] [--[no-]atomic]",
	  .summary = "apply migrations up to TARGET (default head)",
	  .about = "  Apply migrations up to TARGET, each in its own transaction "
	    "(all in one\n  with --atomic), with a progress line per migration."
	    "  Ctrl-C cancels\n  the run: the running migration rolls back.\n\n"
	    "  With --sql, print instead the SQL such a run would send, from the "
	    "files\n  alone (no daemon, no database), for review or psql: FROM is "
	    "the state\n  the database is assumed to be at (default base).\n\n"
	    "  With --all [--parallel N] [--canary DB] [--continue-on-error]: "
	    "every\n  database of the migd, each an ordinary run on its own "
	    "queue and lock;\n  the --canary first and alone, then --parallel "
	    "N at a time (default 4).\n  The first failure starts no more "
	    "databases (those running finish)\n  unless --continue-on-error; "
	    "a failed canary always stops the rollout.\n  Progress lines start "
	    "with the database's name; a summary names every\n  database at "
	    "the end.\n",
	  .arguments = "  TARGET   head (default), heads, +N, or a revision id or a "
	    "unique prefix\n  FROM:TO  with --sql: base, head, heads or revisions "
	    "(a comma list),\n           then any target\n",
	  .examples = "  migctl upgrade\n  migctl upgrade +1\n"
	    "  migctl upgrade --dry-run\n  migctl upgrade --wait-daemon=60 head\n"
	    "  migctl upgrade --sql base:head -c migd.conf > up.sql\n"
	    "  migctl upgrade --all --canary staging --parallel 8\n",
	  .exits = "  0  upgraded, or nothing to do; --dry-run: the plan can run\n"
	    "  1  a migration failed (rolled back, or left dirty), or the run "
	    "was\n     refused: invalid files, drift, dirty, ahead, an unknown "
	    "target;\n     --all: any database failed\n" EXITS_2_3 "  4  "
	    "--dry-run: the plan cannot run (\"cannot run:\"), of any "
	    "database\n     with --all\n" EXITS_RUN_5_6 EXITS_7,
	  .max_args = 1, .flags = ARG_DRY_RUN | ARG_DRIFT | ARG_WAIT_DAEMON |
	    ARG_ATOMIC | ARG_SQL | ARG_FILES | ARG_SKIPPED | ARG_ALL |
	    ARG_ROLLOUT,
	  .params = params_target,
	  .print = out_run, .exit_code = exit_plan },
	{ .name = "downgrade", .method = "downgrade",
	  .usage = "downgrade TARGET [--dry-run] [--[no-]atomic]\n"
	    "downgrade --sql FROM:TO [-d DIR|-c CONFIG] [--[no-]atomic]",
	  .summary = "revert migrations down to TARGET",
	  .about = "  Revert migrations down to TARGET, each in its own transaction "
	    "(all in\n  one with --atomic).  Schemas migd manages are never "
	    "dropped.  Ctrl-C\n  cancels the run.  With --sql, print the SQL "
	    "instead, from the files\n  alone; FROM is where the database is.\n",
	  .arguments = "  TARGET   -N (N steps down), base (everything), or a "
	    "revision: what is\n           built on it is reverted, it stays "
	    "applied\n  FROM:TO  with --sql: where the database is, and the "
	    "target\n",
	  .examples = "  migctl downgrade -1\n  migctl downgrade base --dry-run\n"
	    "  migctl downgrade --sql head:base -d migrations\n",
	  .exits = "  0  downgraded, or nothing to do; --dry-run: the plan can "
	    "run\n  1  a migration failed, or the run was refused\n" EXITS_2_3
	    "  4  --dry-run: the plan cannot run (\"cannot run:\")\n"
	    EXITS_RUN_5_6 EXITS_7,
	  .min_args = 1, .max_args = 1, .flags = ARG_DRY_RUN | ARG_DRIFT |
	    ARG_ATOMIC | ARG_SQL | ARG_FILES, .params = params_target,
	  .print = out_run, .exit_code = exit_plan },
	{ .name = "cancel", .method = "cancel", .usage = "cancel [--all]",
	  .summary = "stop the running migration run",
	  .about = "  Stop the running run: its statement is cancelled and its "
	    "migration\n  rolls back (a non-transactional one goes dirty); the "
	    "migrations before\n  it stay applied (none in an atomic run).  A "
	    "queued run never starts.\n\n  With --all, stop every rollout "
	    "(upgrade --all), also one whose migctl\n  is gone: no more "
	    "databases start and their running runs are cancelled.\n",
	  .examples = "  migctl cancel\n  migctl --db billing cancel\n"
	    "  migctl cancel --all\n",
	  .exits = "  0  the run is being cancelled\n  1  no run is going on "
	    "(--all: no rollout)\n" EXITS_RUN,
	  .flags = ARG_ALL, .print = out_cancel },
	{ .name = "stamp", .method = "stamp", .usage = "stamp REV [REV...] "
	    "[--purge]",
	  .summary = "set the version table to REV without running anything",
	  .about = "  Say the database is at REV without running any migration, "
	    "as Alembic's\n  stamp does: the rows on REV's lineage (what it "
	    "builds on and what builds\n  on it) give way to REV, other heads "
	    "stay.  Several revisions at once\n  (also as a comma list).  "
	    "Writes a history row per revision.  Refused,\n  changing nothing, "
	    "where Alembic fails or would lose or contradict a row.\n",
	  .arguments = "  REV  base, head, heads, LABEL@head, or a revision id or "
	    "a unique\n       prefix of one\n",
	  .examples = "  migctl stamp head\n  migctl stamp 3f2a9c\n"
	    "  migctl stamp 3f2a9c 5c2d8e\n  migctl stamp --purge 3f2a9c\n",
	  .exits = "  0  stamped\n  1  REV is unknown or ambiguous, the files "
	    "are invalid, the\n     version table names an unknown revision "
	    "(see --purge), or the\n     revisions cannot be stamped together\n"
	    EXITS_RUN,
	  .min_args = 1, .max_args = 100, .flags = ARG_PURGE,
	  .params = params_stamp, .print = out_rows },
	{ .name = "resolve", .method = "resolve",
	  .usage = "resolve REV applied|unapplied",
	  .summary = "clear a dirty revision, saying what is true",
	  .about = "  Clear the dirty mark of a revision whose non-transactional "
	    "migration\n  stopped part-way, once you have checked the database.\n",
	  .arguments = "  REV        the dirty revision\n  applied    it took "
	    "effect, or you finished it by hand\n  unapplied  it did not: it "
	    "runs again\n",
	  .examples = "  migctl resolve 0005 unapplied\n",
	  .exits = "  0  resolved\n  1  REV is not dirty, or unknown\n" EXITS_RUN,
	  .min_args = 2, .max_args = 2, .params = params_resolve,
	  .print = out_rows },
	{ .name = "accept", .method = "accept", .usage = "accept REV [REV...]",
	  .summary = "accept an intended edit of applied revisions' files",
	  .about = "  Record the current checksum of each applied revision's file "
	    "as the\n  accepted one, with a history row (old and new "
	    "checksum), so drift is\n  no longer reported for it until the "
	    "next edit.  Runs nothing and does\n  not move the version table. "
	    " All or nothing: a revision that is not\n  applied, or whose file "
	    "is unchanged, refuses the whole request.\n",
	  .arguments = "  REV  an applied revision whose file was edited on "
	    "purpose (an id or\n       a unique prefix of one)\n",
	  .examples = "  migctl verify\n  migctl accept 0003\n",
	  .exits = "  0  accepted\n  1  REV is unknown, not applied or not "
	    "edited\n" EXITS_RUN,
	  .min_args = 1, .max_args = 1000, .params = params_accept,
	  .print = out_accept },
	{ .name = "adopt", .method = "adopt", .usage = "adopt [--from TOOL "
	  "[--table NAME]]",
	  .summary = "take over a database another tool (Alembic) migrated",
	  .about = "  Take over a database another tool migrated: record the "
	    "checksum of\n  every applied revision that has none, with an "
	    "'adopt' history row, so\n  that an edit of its file is drift from "
	    "then on.  Runs no migration;\n  a second adopt records nothing.  "
	    "Refused when the version table names\n  unknown revisions, a "
	    "revision is dirty, or revisions are skipped.\n  status and verify "
	    "list what is unverified.\n  With --from TOOL, on a database migd "
	    "never managed: read TOOL's own\n  state table (never changed), "
	    "write the version table at the applied\n  revisions and their "
	    "checksums, in one transaction.  Refused when\n  the table is "
	    "missing, dirty, has a failed row, a version no file\n  defines, "
	    "or a gap, or when the version table has rows.\n  --table NAME "
	    "reads TOOL's table under the name it was given\n  "
	    "(golang-migrate's x-migrations-table, goose -table, dbmate\n  "
	    "--migrations-table, Flyway's table).  While another session\n  "
	    "changes the schema (the tool still migrating), --from refuses\n  "
	    "with exit 5.\n",
	  .arguments = "  TOOL  dbmate, golang-migrate, sqlx, diesel, goose, "
	    "flyway, or auto\n        (the one state table present)\n"
	    "  NAME  TABLE or SCHEMA.TABLE, as in SQL: unquoted is lower "
	    "case\n",
	  .examples = "  migctl adopt\n  migctl adopt --from dbmate\n"
	    "  migctl adopt --from goose --table app.goose_versions\n",
	  .exits = "  0  adopted, or nothing to adopt\n  1  refused: unknown "
	    "revisions, dirty, skipped, invalid files;\n     --from: see above\n"
	    EXITS_RUN,
	  .flags = ARG_FROM, .params = params_adopt, .print = out_adopt },
	{ .name = "schemas", .method = "schemas", .usage = "schemas",
	  .summary = "schemas, where they come from, what the next run creates",
	  .about = "  The configured schemas and every schema the migration files "
	    "create\n  objects in, with the file and line that names each, "
	    "whether it exists,\n  and whether the next run creates it.\n",
	  .examples = "  migctl schemas\n",
	  .exits = "  0  answered\n  1  failed\n" EXITS_ASK,
	  .print = out_schemas },
	{ .name = "verify", .method = "verify", .usage = "verify [--all]",
	  .summary = "check for drift, dirty or unknown revisions (exit 4 if any)",
	  .about = "  Check for drift (an applied file changed), dirty revisions, "
	    "revisions\n  a rebase slipped below applied ones (skipped), a "
	    "version table that\n  contradicts itself (inconsistent), and "
	    "revisions the database has but\n  no file defines (ahead).  "
	    "Pending migrations are fine.\n  With --all, every database, "
	    "naming those with something found.\n",
	  .examples = "  migctl verify || echo 'look at the database first'\n"
	    "  migctl verify --all\n",
	  .exits = "  0  nothing found\n  1  failed (invalid files, no database)\n"
	    EXITS_2_3 "  4  drift, dirty, skipped, inconsistent or ahead found\n"
	    "     (--all: in any database)\n" EXITS_5_6 EXITS_7,
	  .flags = ARG_ALL, .print = out_verify, .exit_code = exit_verify },
	{ .name = "check", .method = "status", .usage = "check [--all]",
	  .summary = "exit 0 only when at head with nothing wrong (else 4)",
	  .about = "  Like status, but exit 0 only when the state is up_to_date "
	    "(at head;\n  nothing pending, drifted, dirty or ahead), 4 otherwise, "
	    "also when migd\n  is not connected or the files are invalid.  For "
	    "CI gates and health\n  checks.  With --all, every database must "
	    "be; the others are named.\n",
	  .examples = "  migctl check || exit\n  migctl check --all\n",
	  .exits = "  0  up to date\n  1  failed: no database of that name "
	    "(--db), an unreadable\n     reply\n" EXITS_2_3 "  4  anything "
	    "else, pending included (--all: of any database)\n" EXITS_5_6
	    EXITS_7,
	  .flags = ARG_ALL, .print = out_status, .exit_code = exit_check },
	{ .name = "reload", .method = "reload", .usage = "reload",
	  .summary = "re-read the configuration and the migration files",
	  .about = "  Re-read the configuration and the migration files, as SIGHUP "
	    "does.  An\n  invalid configuration is refused; the running one "
	    "stays.\n",
	  .examples = "  migctl reload\n",
	  .exits = "  0  reloaded\n  1  refused (the message says why)\n" EXITS_RUN,
	  .print = out_reload },
	{ .name = "version", .method = "version", .usage = "version",
	  .summary = "the daemon's version",
	  .about = "  The daemon's version and protocol version ('migctl "
	    "--version' prints\n  migctl's own).\n",
	  .examples = "  migctl version\n",
	  .exits = "  0  answered\n" EXITS_ASK,
	  .print = out_version },
	{ .name = "wait", .method = "status",
	  .usage = "wait [--for head|ready] [--timeout S]",
	  .summary = "wait until the database is at head (or migd is ready)",
	  .about = "  Ask migd every 0.25 s until the condition holds: head (the "
	    "default):\n  the database is at head; ready: migd answers and is "
	    "connected to the\n  database.  With --json, prints the last status "
	    "received.  For readiness\n  probes and deploy hooks.\n",
	  .examples = "  migctl wait --timeout 0\n  migctl wait --for ready "
	    "--timeout 60 && migctl upgrade\n",
	  .exits = "  0  the condition holds\n  1  no database of that name "
	    "(--db)\n  2  usage error\n  3  migd never "
	    "answered\n  4  migd answered, but the condition was not met in "
	    "time\n  6  not allowed (forbidden)\n" EXITS_7,
	  .flags = ARG_WAIT, .print = out_status, .local = migctl_wait },
	{ .name = "new", .usage = "new -m MESSAGE [-d DIR|-c CONFIG] [--head REV]",
	  .summary = "write the next revision file (no daemon needed)",
	  .about = "  Write the next revision file, DIR/ID_SLUG.sql, with its "
	    "header filled\n  in and empty up and down sections, and print its "
	    "path.  The directory is\n  checked with migd's own parser first: "
	    "one with problems is refused.\n  The parent is the single head "
	    "(none in an empty directory); with\n  several heads, name it with "
	    "--head, or join them with 'migctl merge'.\n\n  The directory: -d "
	    "DIR, else $MIGD_MIGRATIONS, else -c CONFIG's, else\n  ./migrations "
	    "when it exists, else the installed configuration's\n  ("
	    SYSCONFDIR "/migd/migd.conf), else ./migrations (created).  Which "
	    "was\n  used is said on stderr (with --json: directory, "
	    "directory_from).\n\n  In another tool's directory (dbmate, "
	    "golang-migrate, sqlx, diesel,\n  goose, Flyway), the next "
	    "migration as that tool's create command\n  names it, on top of "
	    "the newest (no --head there).\n",
	  .examples = "  migctl new -m \"add invoices\"\n  migctl new -m \"add "
	    "invoices\" -d db/migrations\n  migctl new -m fix --head "
	    "3f2a9c1b7d40\n",
	  .exits = "  0  written\n  1  the directory has problems or several "
	    "heads, --head names no\n     revision, or the file cannot be "
	    "written\n  2  usage error: no -m, a message of several lines\n",
	  .flags = ARG_MESSAGE | ARG_FILES | ARG_HEAD, .local = migctl_new },
	{ .name = "merge", .usage = "merge -m MESSAGE [-d DIR|-c CONFIG]",
	  .summary = "write a revision merging every head (no daemon needed)",
	  .about = "  Write a merge revision whose down_revision lists every head "
	    "of the\n  directory, with empty sections, and print its path.  The "
	    "directory is\n  chosen as for 'new' (see 'migctl help new').\n",
	  .examples = "  migctl merge -m \"join billing and cars\"\n",
	  .exits = "  0  written\n  1  fewer than two heads, the directory has "
	    "problems, or the file\n     cannot be written\n  2  usage error\n",
	  .flags = ARG_MESSAGE | ARG_FILES, .local = migctl_merge },
	{ .name = "import",
	  .usage = "import alembic ALEMBIC_INI [--out DIR|-c CONFIG] "
	    "[--allow-partial]",
	  .summary = "write migd files from an Alembic project (no daemon "
	    "needed)",
	  .about = "  Render every revision of an Alembic project through "
	    "Alembic's own\n  offline mode (the project's env.py, no database) "
	    "and write one migd\n  file per revision: the same ids, parents, "
	    "depends_on and branch labels,\n  the message from the docstring, "
	    "the up and down SQL without Alembic's\n  version-table "
	    "statements.  Statements of an autocommit_block() run\n  outside a "
	    "transaction.  A file edited since it was imported is never\n  "
	    "overwritten (it is named).  A revision that cannot be rendered "
	    "offline\n  (it reads rows through op.get_bind()) is named and "
	    "nothing is written;\n  "
	    "with --allow-partial it becomes a placeholder that refuses to run "
	    "until\n  its SQL is written.  A version table env.py names "
	    "that is not\n  CONFIG's (or migd's default) is named: set "
	    "version_table to it.\n  Runs /usr/bin/python3 (or "
	    "$MIGCTL_PYTHON) with Alembic, from the\n  directory of "
	    "ALEMBIC_INI.\n\n  The directory: --out DIR, else chosen as for "
	    "'new' (-c CONFIG's, else\n  ./migrations ...; see 'migctl help "
	    "new').\n",
	  .arguments = "  alembic      where the project comes from (Alembic "
	    "only)\n  ALEMBIC_INI  the project's alembic.ini\n",
	  .examples = "  migctl import alembic alembic.ini --out migrations\n"
	    "  migctl import alembic app/alembic.ini -c /etc/migd/migd.conf\n",
	  .exits = "  0  imported (files kept because they were edited are "
	    "named)\n  1  a revision cannot be rendered offline (nothing "
	    "written), or Alembic,\n     the project or its imports cannot be "
	    "loaded\n  2  usage error\n",
	  .min_args = 2, .max_args = 2, .flags = ARG_IMPORT | ARG_CONFIG,
	  .local = migctl_import },
	{ .name = "revisions", .method = "revisions",
	  .usage = "revisions [-d DIR|-c CONFIG]",
	  .summary = "the revision graph, newest first, as alembic history",
	  .about = "  The revision graph, newest first, one line each as 'alembic "
	    "history'\n  prints it.  With -d or -c, from the files (no daemon); "
	    "else migd answers\n  from its own.\n",
	  .examples = "  migctl revisions\n  migctl revisions -d migrations\n",
	  .exits = "  0  listed\n  1  the files have problems\n" EXITS_ASK,
	  .flags = ARG_FILES, .print = out_revisions },
	{ .name = "lint", .usage = "lint [-d DIR|-c CONFIG] [FILE...]\n"
	    "lint -s SOCKET [--format TOOL] [FILE...]",
	  .summary = "deploy-safety findings of migration files (exit 4 on "
	    "an error)",
	  .about = "  The statements of the files' up sections that take a "
	    "lock blocking reads\n  or writes on an existing table for as long "
	    "as a scan or a rewrite, fail,\n  or break running clients: each "
	    "as FILE:LINE:COL, severity, rule, the\n  lock and what to do "
	    "instead (docs/lint.md).  FILE... are linted as one\n  run in the "
	    "order given: a table an earlier FILE creates is new.  Without\n  "
	    "FILE, every revision of the directory (chosen as for 'new') "
	    "alone.\n  Opt-outs: '-- migd:lint-ignore RULE[,RULE] why' on the "
	    "line above a\n  statement, '-- lint-ignore: RULE[,RULE] why' in a "
	    "file's header.  -c\n  CONFIG: its schemas are managed "
	    "(drop-managed-schema).  No daemon.\n\n"
	    "  With -s SOCKET (or $MIGD_SOCKET set) and neither -d, -c nor "
	    "FILE, migd\n  lints the pending plan with live context: a "
	    "finding on a table under\n  lint_small_table_rows rows (the "
	    "catalog's estimate) is info, and who\n  holds or waits for a "
	    "conflicting lock on its table now is shown.\n\n  With -s SOCKET "
	    "and FILE..., migctl sends the files' text and migd\n  lints them "
	    "so, as one run in the order given, read as its [migrations]\n  "
	    "format says (--format: as TOOL's), whether or not it loaded them: "
	    "a\n  pull request's files against the live table sizes.  At most "
	    "256 files\n  and 256 KiB of text, within migd's max_request_bytes "
	    "(64 KiB by\n  default); beyond, lint them offline.\n",
	  .arguments = "  FILE  a migration file; several are one run, in "
	    "order\n",
	  .examples = "  migctl lint\n  migctl lint migrations/0042_orders.sql"
	    "\n  migctl lint --json -c /etc/migd/migd.conf\n"
	    "  migctl lint -s /run/migd/migd.sock\n"
	    "  migctl lint -s /run/migd/migd.sock $(git diff --name-only "
	    "main -- migrations)\n",
	  .exits = "  0  no finding of error severity (warnings may be shown)\n"
	    "  1  the files have problems\n  2  usage error\n"
	    "  3  -s: migd unreachable\n"
	    "  4  a finding of error severity that is not ignored\n"
	    "  5  -s: migd is busy (too many clients)\n"
	    "  6  -s: not allowed (forbidden)\n"
	    "  7  -s: the socket's listener is not the expected migd\n",
	  .max_args = 1 << 20, .flags = ARG_FILES | ARG_FORMAT,
	  .local = migctl_lint },
	{ .name = "help", .usage = "help [COMMAND]",
	  .summary = "the overview, or a command's usage, options and examples",
	  .about = "  The overview, or COMMAND's usage, arguments, options, "
	    "examples and exit\n  codes, as 'migctl COMMAND --help' prints "
	    "them.\n",
	  .arguments = "  COMMAND  one of the commands of 'migctl help'\n",
	  .examples = "  migctl help upgrade\n  migctl upgrade --help\n",
	  .exits = "  0  printed\n  2  no such command\n",
	  .max_args = 1, .local = usage_help_cmd },
};
const size_t migctl_ncmds = nitems(migctl_cmds);

/* Every option, and which commands take it: parsing, help and "did you
 * mean" all read it. */
const struct migctl_opt migctl_options[] = {
	{ OPT_SOCKET, 's', "socket", NULL, "PATH", 0, "the control socket "
	    "(default $" MIGD_SOCKET_ENV ",\nelse " MIGD_DEFAULT_SOCKET ")" },
	{ OPT_DB, 0, "db", NULL, "NAME", 0, "the database, of a migd serving "
	    "several\n([database NAME]; default: the only one), or of -c "
	    "CONFIG\nfor the commands that read the files" },
	{ OPT_JSON, 'j', "json", NULL, NULL, 0, "JSON on stdout, errors too; "
	    "nothing on stderr" },
	{ OPT_STREAM, 0, "stream", NULL, NULL, 0, "with --json: each message "
	    "as a JSON line" },
	{ OPT_LOCAL, 0, "local", NULL, NULL, 0, "with -c CONFIG: run on a "
	    "private migd, started\nand stopped for the command" },
	{ OPT_VERBOSE, 'v', "verbose", NULL, NULL, 0, "with --local: show that "
	    "migd's log" },
	{ OPT_HELP, 'h', "help", NULL, NULL, 0, "this help; after a command, "
	    "the command's" },
	{ OPT_VERSION, 'V', "version", NULL, NULL, 0, "migctl's version" },
	{ OPT_DRY_RUN, 0, "dry-run", NULL, NULL, ARG_DRY_RUN, "show the plan, "
	    "run nothing" },
	{ OPT_SQL, 0, "sql", NULL, NULL, ARG_SQL, "print the run's SQL, from "
	    "the files (no daemon)" },
	{ OPT_ATOMIC, 0, "atomic", NULL, NULL, ARG_ATOMIC, "the whole run in "
	    "one transaction" },
	{ OPT_NO_ATOMIC, 0, "no-atomic", NULL, NULL, ARG_ATOMIC, "a "
	    "transaction per migration, whatever\nmigd.conf says" },
	{ OPT_DRIFT, 0, "allow-drift", NULL, NULL, ARG_DRIFT, "run although "
	    "applied files changed" },
	{ OPT_SKIPPED, 0, "apply-skipped", NULL, NULL, ARG_SKIPPED, "first "
	    "run revisions slipped below applied ones\n(a rebase), out of "
	    "order" },
	{ OPT_WAIT_DAEMON, 0, "wait-daemon", NULL, "S", ARG_WAIT_DAEMON, "retry "
	    "connecting for up to S seconds" },
	{ OPT_LIMIT, 0, "limit", NULL, "N", ARG_LIMIT, "at most N rows, 1 to "
	    "100000 (default 50)" },
	{ OPT_FOR, 0, "for", NULL, "head|ready", ARG_WAIT, "what to wait for "
	    "(default head)" },
	{ OPT_TIMEOUT, 0, "timeout", NULL, "S", ARG_WAIT, "the longest wait in "
	    "seconds (default 60;\n0: ask once)" },
	{ OPT_MESSAGE, 'm', "message", NULL, "MESSAGE", ARG_MESSAGE, "the "
	    "revision's message, one line" },
	{ OPT_DIR, 'd', "dir", "directory", "DIR", ARG_DIR, "the migrations "
	    "directory (also --directory)" },
	{ OPT_CONFIG, 'c', "config", NULL, "CONFIG", ARG_CONFIG, "a migd.conf: "
	    "its [migrations] directory\nand settings" },
	{ OPT_HEAD, 0, "head", NULL, "REV", ARG_HEAD, "the parent: an id or a "
	    "unique prefix" },
	{ OPT_OUT, 0, "out", NULL, "DIR", ARG_IMPORT, "the directory to write "
	    "the files to" },
	{ OPT_PARTIAL, 0, "allow-partial", NULL, NULL, ARG_IMPORT, "write a "
	    "placeholder for a revision that\ncannot be rendered offline" },
	{ OPT_PURGE, 0, "purge", NULL, NULL, ARG_PURGE, "empty the version "
	    "table first (also of\nrevisions no file defines)" },
	{ OPT_ALL, 0, "all", NULL, NULL, ARG_ALL, "every database of the "
	    "migd (status, check, verify,\nupgrade; cancel: every rollout)" },
	{ OPT_PARALLEL, 0, "parallel", NULL, "N", ARG_ROLLOUT, "upgrade --all: "
	    "N databases at a time, 1 to\n1000 (default 4)" },
	{ OPT_CANARY, 0, "canary", NULL, "NAME", ARG_ROLLOUT, "upgrade --all: "
	    "this database first, alone;\nnothing else starts if it fails" },
	{ OPT_CONTINUE, 0, "continue-on-error", NULL, NULL, ARG_ROLLOUT,
	    "upgrade --all: go on with the\nothers after a failure" },
	{ OPT_FRESH, 0, "fresh", NULL, NULL, ARG_FRESH, "status --all: read "
	    "every database now, not\nthe state kept from its last read" },
	{ OPT_FORMAT, 0, "format", NULL, "TOOL", ARG_FORMAT, "lint -s SOCKET "
	    "FILE...: read the files as TOOL's:\nmigd, dbmate, golang-migrate, "
	    "sqlx, diesel, goose,\nflyway or auto (default: migd's format)" },
	{ OPT_FROM, 0, "from", NULL, "TOOL", ARG_FROM, "read the state table "
	    "of TOOL: dbmate,\ngolang-migrate, sqlx, diesel, goose, flyway or "
	    "auto" },
	{ OPT_TABLE, 0, "table", NULL, "NAME", ARG_FROM, "adopt --from TOOL: "
	    "TOOL's state table under\nanother name, as in SQL (TABLE or "
	    "SCHEMA.TABLE)" },
};
const size_t migctl_noptions = nitems(migctl_options);
