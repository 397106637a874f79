/*
 * status_load: C persistent clients of migd's control socket, each sending
 * one request at a time back to back (the next as soon as the reply's line
 * is in), for a fixed time; prints requests/s and latency percentiles as
 * one JSON line.
 *
 *   cc -O2 -pthread -o status_load status_load.c
 *   status_load SOCKET CLIENTS SECONDS [METHOD]
 *
 * The load is bounded in count (CLIENTS <= 1000) and time (SECONDS <= 600)
 * and goes only to a Unix socket.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct client {
	pthread_t	 th;
	int		 fd;
	uint64_t	*lat;		/* ns, one per reply */
	size_t		 n, cap;
	size_t		 stale, errors;
	int		 failed;
};

static const char	*sock_path, *method = "status";
static double		 seconds;
static pthread_barrier_t start;
static volatile int	 stop;

static uint64_t
now_ns(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

static int
connect_sock(void)
{
	struct sockaddr_un	 sun;
	int			 fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(sock_path) >= sizeof sun.sun_path)
		return (-1);
	strcpy(sun.sun_path, sock_path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1)
		return (-1);
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		close(fd);
		return (-1);
	}
	return (fd);
}

static void *
run(void *arg)
{
	struct client	*c = arg;
	char		 req[128], *buf, *nl;
	size_t		 cap = 1 << 16, have = 0;
	uint64_t	 t0;
	ssize_t		 r;
	long		 id = 0;
	int		 len;

	buf = malloc(cap);
	pthread_barrier_wait(&start);
	while (!stop && c->fd != -1) {
		len = snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"id\":%ld,"
		    "\"method\":\"%s\"}\n", ++id, method);
		t0 = now_ns();
		if (write(c->fd, req, (size_t)len) != len) {
			c->failed = 1;
			break;
		}
		/* Read up to the reply's newline (a reply is one line). */
		for (;;) {
			if ((nl = memchr(buf, '\n', have)) != NULL)
				break;
			if (have == cap)
				buf = realloc(buf, cap *= 2);
			r = read(c->fd, buf + have, cap - have);
			if (r <= 0) {
				c->failed = 1;
				goto out;
			}
			have += (size_t)r;
		}
		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 4096;
			c->lat = realloc(c->lat, c->cap * sizeof *c->lat);
		}
		c->lat[c->n++] = now_ns() - t0;
		*nl = '\0';
		if (strstr(buf, "\"error\"") != NULL)
			c->errors++;
		else if (strstr(buf, "\"stale\":true") != NULL ||
		    strstr(buf, "\"stale\": true") != NULL)
			c->stale++;
		have -= (size_t)(nl + 1 - buf);
		memmove(buf, nl + 1, have);
	}
out:
	free(buf);
	return (NULL);
}

static int
cmp(const void *a, const void *b)
{
	uint64_t	 x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

int
main(int argc, char **argv)
{
	struct client	*cs;
	uint64_t	*all, t0, t1;
	size_t		 n = 0, k, stale = 0, errors = 0;
	int		 i, nc, failed = 0;
	struct timespec	 ts;

	if (argc < 4) {
		fprintf(stderr, "usage: status_load SOCKET CLIENTS SECONDS "
		    "[METHOD]\n");
		return (2);
	}
	sock_path = argv[1];
	nc = atoi(argv[2]);
	seconds = atof(argv[3]);
	if (argc > 4)
		method = argv[4];
	if (nc < 1 || nc > 1000 || seconds <= 0 || seconds > 600) {
		fprintf(stderr, "status_load: 1-1000 clients, 0-600 s\n");
		return (2);
	}
	cs = calloc((size_t)nc, sizeof *cs);
	pthread_barrier_init(&start, NULL, (unsigned)nc + 1);
	for (i = 0; i < nc; i++) {
		if ((cs[i].fd = connect_sock()) == -1) {
			fprintf(stderr, "status_load: connect %s: %s\n",
			    sock_path, strerror(errno));
			return (1);
		}
	}
	for (i = 0; i < nc; i++)
		pthread_create(&cs[i].th, NULL, run, &cs[i]);
	pthread_barrier_wait(&start);
	t0 = now_ns();
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
	stop = 1;
	for (i = 0; i < nc; i++) {
		pthread_join(cs[i].th, NULL);
		n += cs[i].n;
		stale += cs[i].stale;
		errors += cs[i].errors;
		failed += cs[i].failed;
	}
	t1 = now_ns();
	all = malloc((n ? n : 1) * sizeof *all);
	for (i = 0, k = 0; i < nc; i++) {
		memcpy(all + k, cs[i].lat, cs[i].n * sizeof *all);
		k += cs[i].n;
		close(cs[i].fd);
	}
	qsort(all, n, sizeof *all, cmp);
	printf("{\"method\":\"%s\",\"clients\":%d,\"seconds\":%.3f,"
	    "\"requests\":%zu,\"rps\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
	    "\"p99_ms\":%.3f,\"max_ms\":%.3f,\"stale\":%zu,\"errors\":%zu,"
	    "\"failed_clients\":%d}\n", method, nc, (double)(t1 - t0) / 1e9, n,
	    (double)n / ((double)(t1 - t0) / 1e9),
	    n ? (double)all[n / 2] / 1e6 : 0.0,
	    n ? (double)all[n * 9 / 10] / 1e6 : 0.0,
	    n ? (double)all[n * 99 / 100] / 1e6 : 0.0,
	    n ? (double)all[n - 1] / 1e6 : 0.0, stale, errors, failed);
	return (failed ? 1 : 0);
}
