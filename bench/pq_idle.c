/*
 * pq_idle: the resident memory of a bare libpq client, for comparison with
 * migd's idle RSS: two connections (migd's default pool), one query, then
 * VmRSS, RssAnon and RssFile from /proc/self/status.
 *
 *   cc -O2 -I"$(pg_config --includedir)" -o pq_idle pq_idle.c -lpq
 *   pq_idle CONNINFO
 */
#include <stdio.h>
#include <string.h>

#include <libpq-fe.h>

int
main(int argc, char **argv)
{
	PGconn	*a, *b;
	FILE	*f;
	char	 line[256];

	if (argc < 2)
		return (2);
	a = PQconnectdb(argv[1]);
	b = PQconnectdb(argv[1]);
	if (PQstatus(a) != CONNECTION_OK || PQstatus(b) != CONNECTION_OK) {
		fprintf(stderr, "pq_idle: %s", PQerrorMessage(a));
		return (1);
	}
	PQclear(PQexec(a, "SELECT 1"));
	if ((f = fopen("/proc/self/status", "r")) == NULL)
		return (1);
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "VmRSS", 5) == 0 ||
		    strncmp(line, "RssAnon", 7) == 0 ||
		    strncmp(line, "RssFile", 7) == 0)
			fputs(line, stdout);
	}
	fclose(f);
	PQfinish(a);
	PQfinish(b);
	return (0);
}
