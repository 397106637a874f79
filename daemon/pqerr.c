/*
 * Why a connection to PostgreSQL failed, from libpq's message alone: libpq
 * keeps the server's error of a failed start-up to itself, so the pool asks
 * for verbose messages, which carry each SQLSTATE ("FATAL:  3D000: ...")
 * whatever language the server speaks.  Pure: text in, verdict out.
 */
#include <ctype.h>
#include <string.h>

#include "migd.h"

/* SQLSTATEs of a start-up that no retry will fix until someone acts. */
static const char *pqerr_permanent_codes[] = {
	"3D000",	/* invalid_catalog_name: no such database */
	"28000",	/* invalid_authorization_specification: no such
			   role, no pg_hba.conf entry, peer/ident failed */
	"28P01",	/* invalid_password */
	"42501"		/* insufficient_privilege: no CONNECT privilege */
};

/* libpq's own messages (not translated: migd never calls setlocale). */
static const char *pqerr_permanent_texts[] = {
	"fe_sendauth: no password supplied"
};

/* Whether p starts a verbose message's ":  CODE: " (severity, then a
 * five-character SQLSTATE); code gets the SQLSTATE. */
static int
pqerr_code_at(const char *p, char code[6])
{
	int	 i;

	if (strncmp(p, ":  ", 3) != 0)
		return (0);
	for (i = 0; i < 5; i++) {
		if (!isdigit((unsigned char)p[3 + i]) &&
		    !isupper((unsigned char)p[3 + i]))
			return (0);
	}
	if (p[8] != ':' || p[9] != ' ')
		return (0);
	memcpy(code, p + 3, 5);
	code[5] = '\0';
	return (1);
}

static int
pqerr_permanent_code(const char *code)
{
	size_t	 i;

	for (i = 0; i < nitems(pqerr_permanent_codes); i++) {
		if (strcmp(code, pqerr_permanent_codes[i]) == 0)
			return (1);
	}
	return (0);
}

/*
 * Judges the message of a failed connection attempt made with
 * PQERRORS_VERBOSE.  Returns 1 when it failed for a reason that retrying
 * cannot fix (the database or the role does not exist, authentication
 * failed or was refused, no password to give), 0 otherwise (the server is
 * down or starting, too many connections, a timeout, ...).  With several
 * hosts, every attempt must have failed so.  *display (to free) gets the
 * message as the default verbosity shows it: no SQLSTATE, no LOCATION line;
 * sqlstate gets the first permanent SQLSTATE, or "".
 */
int
pqerr_startup(const char *msg, char **display, char sqlstate[6])
{
	const char	*p, *nl;
	char		*out, *o, code[6];
	size_t		 i, attempts = 0, permanent = 0, len;

	sqlstate[0] = '\0';
	if (msg == NULL)
		msg = "";
	o = out = xmalloc(strlen(msg) + 1);
	for (p = msg; *p != '\0'; p = nl) {
		nl = strchr(p, '\n');
		nl = nl != NULL ? nl + 1 : p + strlen(p);
		len = (size_t)(nl - p);
		if (strncmp(p, "LOCATION:  ", 11) == 0)
			continue;
		if (strncmp(p, "connection to server ", 21) == 0)
			attempts++;
		for (i = 0; i < nitems(pqerr_permanent_texts); i++) {
			if (memmem(p, len, pqerr_permanent_texts[i],
			    strlen(pqerr_permanent_texts[i])) != NULL)
				permanent++;
		}
		for (; p < nl; p++) {
			if (!pqerr_code_at(p, code)) {
				*o++ = *p;
				continue;
			}
			/* Keep ":  ", drop "CODE: ". */
			memcpy(o, ":  ", 3);
			o += 3;
			p += 9;
			if (pqerr_permanent_code(code)) {
				permanent++;
				if (sqlstate[0] == '\0')
					memcpy(sqlstate, code, 6);
			}
		}
	}
	*o = '\0';
	*display = out;
	if (permanent == 0)
		return (0);
	return (attempts == 0 || permanent >= attempts);
}

/* A notice's severity (unlocalized where the server says it) and primary
 * message, for the log and for clients. */
void
pqerr_notice(const PGresult *res, const char **sev, const char **msg)
{
	if ((*sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED)) ==
	    NULL && (*sev = PQresultErrorField(res, PG_DIAG_SEVERITY)) == NULL)
		*sev = "NOTICE";
	if ((*msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)) == NULL)
		*msg = PQresultErrorMessage(res);
}
