/* Unit tests of pqerr_startup: which failed connections are worth retrying. */
#include <stdlib.h>
#include <string.h>

#include "migd.h"
#include "tap.h"

/* Judges msg; checks the verdict, the message shown and the SQLSTATE. */
static void
judge(const char *msg, int want, const char *display, const char *code,
    const char *what)
{
	char	*shown, sqlstate[6];

	is_int(pqerr_startup(msg, &shown, sqlstate), want, "%s: %s", what,
	    want ? "permanent" : "transient");
	is_str(shown, display, "%s: message", what);
	is_str(sqlstate, code, "%s: SQLSTATE", what);
	free(shown);
}

int
main(void)
{
	/* As libpq 15 says them with PQERRORS_VERBOSE. */
	judge("connection to server on socket \"/tmp/x/.s.PGSQL.5432\" "
	    "failed: FATAL:  3D000: database \"nope\" does not exist\n"
	    "LOCATION:  InitPostgres, postinit.c:948\n", 1,
	    "connection to server on socket \"/tmp/x/.s.PGSQL.5432\" "
	    "failed: FATAL:  database \"nope\" does not exist\n", "3D000",
	    "no such database");
	judge("connection to server on socket \"/tmp/x/.s.PGSQL.5432\" "
	    "failed: FATAL:  28P01: password authentication failed for user "
	    "\"postgres\"\nLOCATION:  auth_failed, auth.c:334\n", 1,
	    "connection to server on socket \"/tmp/x/.s.PGSQL.5432\" "
	    "failed: FATAL:  password authentication failed for user "
	    "\"postgres\"\n", "28P01", "wrong password");
	judge("connection to server at \"db\" (10.0.0.1), port 5432 failed: "
	    "FATAL:  28000: no pg_hba.conf entry for host \"10.0.0.2\", user "
	    "\"u\", database \"d\", no encryption\n", 1,
	    "connection to server at \"db\" (10.0.0.1), port 5432 failed: "
	    "FATAL:  no pg_hba.conf entry for host \"10.0.0.2\", user \"u\", "
	    "database \"d\", no encryption\n", "28000", "no pg_hba.conf entry");
	judge("connection to server on socket \"/s/.s.PGSQL.5432\" failed: "
	    "FATAL:  3D000: la base de donn\xc3\xa9"
	    "es \xc2\xab nope \xc2\xbb "
	    "n'existe pas\n", 1, "connection to server on socket "
	    "\"/s/.s.PGSQL.5432\" failed: FATAL:  la base de donn\xc3\xa9"
	    "es \xc2\xab nope \xc2\xbb n'existe pas\n", "3D000",
	    "a server speaking French");
	judge("connection to server on socket \"/s/.s.PGSQL.5432\" failed: "
	    "fe_sendauth: no password supplied\n", 1,
	    "connection to server on socket \"/s/.s.PGSQL.5432\" failed: "
	    "fe_sendauth: no password supplied\n", "", "no password to give");

	/* Worth retrying. */
	judge("connection to server on socket \"/s/.s.PGSQL.5999\" failed: No "
	    "such file or directory\n\tIs the server running locally and "
	    "accepting connections on that socket?\n", 0,
	    "connection to server on socket \"/s/.s.PGSQL.5999\" failed: No "
	    "such file or directory\n\tIs the server running locally and "
	    "accepting connections on that socket?\n", "", "server down");
	judge("connection to server on socket \"/s/.s.PGSQL.5432\" failed: "
	    "FATAL:  57P03: the database system is starting up\n"
	    "LOCATION:  ProcessStartupPacket, postmaster.c:2400\n", 0,
	    "connection to server on socket \"/s/.s.PGSQL.5432\" failed: "
	    "FATAL:  the database system is starting up\n", "",
	    "server starting up");
	judge("connection to server on socket \"/s/.s.PGSQL.5432\" failed: "
	    "FATAL:  53300: sorry, too many clients already\n", 0,
	    "connection to server on socket \"/s/.s.PGSQL.5432\" failed: "
	    "FATAL:  sorry, too many clients already\n", "",
	    "too many connections");
	judge("timeout expired while connecting", 0,
	    "timeout expired while connecting", "", "timeout");
	judge(NULL, 0, "", "", "no message");

	/* Several hosts: permanent only when every attempt failed so. */
	judge("connection to server on socket \"/a/.s.PGSQL.5999\" failed: No "
	    "such file or directory\nconnection to server on socket "
	    "\"/b/.s.PGSQL.5432\" failed: FATAL:  3D000: database \"x\" does "
	    "not exist\nLOCATION:  InitPostgres, postinit.c:948\n", 0,
	    "connection to server on socket \"/a/.s.PGSQL.5999\" failed: No "
	    "such file or directory\nconnection to server on socket "
	    "\"/b/.s.PGSQL.5432\" failed: FATAL:  database \"x\" does not "
	    "exist\n", "3D000", "one host down, the other has no database");
	judge("connection to server on socket \"/a/.s.PGSQL.5432\" failed: "
	    "FATAL:  28P01: password authentication failed for user \"u\"\n"
	    "connection to server on socket \"/b/.s.PGSQL.5432\" failed: "
	    "FATAL:  3D000: database \"x\" does not exist\n", 1,
	    "connection to server on socket \"/a/.s.PGSQL.5432\" failed: "
	    "FATAL:  password authentication failed for user \"u\"\n"
	    "connection to server on socket \"/b/.s.PGSQL.5432\" failed: "
	    "FATAL:  database \"x\" does not exist\n", "28P01",
	    "both hosts refuse");

	/* A name that does not resolve may resolve later. */
	judge("could not translate host name \"db\" to address: Name or "
	    "service not known\n", 0, "could not translate host name \"db\" "
	    "to address: Name or service not known\n", "", "unknown host");

	return (done_testing());
}
