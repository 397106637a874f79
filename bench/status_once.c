/*
 * status_once: the least a status client can do, for comparison with
 * `migctl status`: connect to the control socket, send one request, read
 * the reply's line, print it.  Linked with libc only, so its run time is
 * what exec + the daemon's answer cost without migctl's libraries.
 *
 *   cc -O2 -o status_once status_once.c
 *   status_once SOCKET [METHOD]
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_un	 sun;
	char			 buf[65536], req[128];
	ssize_t			 r;
	size_t			 have = 0;
	int			 fd, len;

	if (argc < 2 || strlen(argv[1]) >= sizeof sun.sun_path)
		return (2);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, argv[1]);
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		perror("status_once");
		return (3);
	}
	len = snprintf(req, sizeof req, "{\"jsonrpc\":\"2.0\",\"id\":1,"
	    "\"method\":\"%s\"}\n", argc > 2 ? argv[2] : "status");
	if (write(fd, req, (size_t)len) != len)
		return (1);
	while (have < sizeof buf && (r = read(fd, buf + have,
	    sizeof buf - have)) > 0) {
		have += (size_t)r;
		if (memchr(buf, '\n', have) != NULL)
			break;
	}
	fwrite(buf, 1, have, stdout);
	return (have > 0 && strstr(buf, "\"result\"") != NULL ? 0 : 1);
}
