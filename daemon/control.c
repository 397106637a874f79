/*
 * The control socket: a Unix stream listener, one bufferevent per client,
 * newline framing with a size bound, and the limits that keep one client
 * from hurting the others (max clients, idle timeout, output backpressure).
 * Requests of one client run one at a time, in order.
 */
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "migd.h"

/* Replies queued beyond this stop the reading of further requests. */
#define CONTROL_OUTPUT_HIGH	(1024 * 1024)
#define CONTROL_OUTPUT_LOW	(256 * 1024)

struct client {
	TAILQ_ENTRY(client)	 entry;
	struct bufferevent	*bev;
	struct event		*resume;	/* runs buffered requests later */
	struct event		*partial;	/* a line too slow to arrive */
	struct peer		 peer;
	u_int			 refs;
	int			 busy;		/* a request is in progress */
	int			 closing;	/* flush, then close */
	int			 eof;		/* peer shut its side down */
	int			 dead;		/* socket gone, awaiting unref */
	int			 paused;	/* output above the high mark */
};
TAILQ_HEAD(clients, client);

static struct {
	struct event_base	*base;
	struct evconnlistener	*listener;
	struct event		*resume_accept;	/* after running out of fds */
	struct clients		 clients;
	u_int			 n_clients;
	char			*path;		/* unlinked at exit when ours */
	dev_t			 path_dev;	/* the socket file we bound, */
	ino_t			 path_ino;	/* so we never unlink another's */
	int			 max_clients;
	int			 admin_reserve;
	size_t			 max_request;
	int			 idle_timeout;
	char			*admin_group;
	char			*read_group;
} control;

static void	control_read(struct bufferevent *, void *);
static void	control_write(struct bufferevent *, void *);
static void	control_event(struct bufferevent *, short, void *);
static void	control_process(struct client *);
static void	control_unlink(void);

/* Whether gid is among n groups. */
static int
control_has_gid(const gid_t *groups, int n, gid_t gid)
{
	int	 i;

	for (i = 0; i < n; i++) {
		if (groups[i] == gid)
			return (1);
	}
	return (0);
}

/* Adds gid to the peer's groups unless it is there already. */
static void
control_add_gid(struct peer *p, gid_t gid)
{
	if (control_has_gid(p->groups, p->n_groups, gid))
		return;
	p->groups = xreallocarray(p->groups, (size_t)p->n_groups + 1,
	    sizeof *p->groups);
	p->groups[p->n_groups++] = gid;
}

/* The peer's groups the kernel knows: its gid and the supplementary
 * groups of its process (SO_PEERGROUPS), read at accept. */
static void
control_groups(struct peer *p, int fd)
{
	gid_t		 groups[256];
	socklen_t	 len = sizeof groups;
	int		 i;

	if (p->gid != (gid_t)-1)
		control_add_gid(p, p->gid);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		for (i = 0; i < (int)(len / sizeof groups[0]); i++)
			control_add_gid(p, groups[i]);
	}
}

/* Adds the groups the group database gives the user, who could always log
 * in again to get them: looked up once, and only when a question needs
 * them (a lookup may be slow, and most connections ask none). */
static void
control_groups_db(struct peer *p)
{
	gid_t	 groups[256];
	int	 i, n = nitems(groups);

	if (p->groups_db)
		return;
	p->groups_db = 1;
	if (p->user == NULL || p->gid == (gid_t)-1 ||
	    getgrouplist(p->user, p->gid, groups, &n) == -1)
		return;
	for (i = 0; i < n; i++)
		control_add_gid(p, groups[i]);
}

/* Whether the peer is in the named group: its gid, its process's groups,
 * or the group database's. */
static int
control_in_group(struct peer *p, const char *group)
{
	struct group	*gr;

	if (group == NULL || *group == '\0')
		return (0);
	if ((gr = getgrnam(group)) == NULL)
		return (0);
	if (control_has_gid(p->groups, p->n_groups, gr->gr_gid))
		return (1);
	control_groups_db(p);
	return (control_has_gid(p->groups, p->n_groups, gr->gr_gid));
}

/* Reads the peer's credentials once, at accept, and decides its rights. */
static void
control_credentials(struct client *c, int fd)
{
	struct ucred	 cred;
	socklen_t	 len = sizeof cred;
	struct passwd	*pw;
	struct peer	*p = &c->peer;

	p->uid = (uid_t)-1;
	p->gid = (gid_t)-1;
	p->pid = -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		p->uid = cred.uid;
		p->gid = cred.gid;
		p->pid = cred.pid;
	}
	if (p->uid != (uid_t)-1 && (pw = getpwuid(p->uid)) != NULL)
		p->user = xstrdup(pw->pw_name);
	else
		p->user = xprintf("%ld", (long)p->uid);
	control_groups(p, fd);
	p->is_admin = p->uid == 0 || p->uid == geteuid() ||
	    control_in_group(p, control.admin_group);
	p->is_reader = p->is_admin || *control.read_group == '\0' ||
	    control_in_group(p, control.read_group);
}

/* The permission class of a file that applies to the peer: owner, group or
 * other, as the kernel picks it (the first that matches decides). */
static int
control_mode_allows(const struct peer *p, const struct stat *sb,
    mode_t usr, mode_t grp, mode_t oth)
{
	if (sb->st_uid == p->uid)
		return ((sb->st_mode & usr) != 0);
	if (control_has_gid(p->groups, p->n_groups, sb->st_gid))
		return ((sb->st_mode & grp) != 0);
	return ((sb->st_mode & oth) != 0);
}

/* Whether the peer may search every directory down to dir (a real path). */
static int
control_may_search(const struct peer *p, const char *dir, char **why)
{
	struct stat	 sb;
	char		*copy, *slash;
	int		 ok = 1;

	copy = xstrdup(dir);
	for (;;) {
		if (stat(*copy != '\0' ? copy : "/", &sb) == -1 ||
		    !control_mode_allows(p, &sb, S_IXUSR, S_IXGRP, S_IXOTH)) {
			*why = xprintf("directory %s is not searchable by uid "
			    "%ld", *copy != '\0' ? copy : "/", (long)p->uid);
			ok = 0;
			break;
		}
		if ((slash = strrchr(copy, '/')) == NULL || *copy == '\0')
			break;
		*slash = '\0';
	}
	free(copy);
	return (ok);
}

/*
 * Whether the peer could read the file itself, judged by the mode bits of
 * the file and of every directory above it (ACLs are not consulted): what
 * migd may show a reader of a file's text.  Admins may read everything.
 * The verdict on the last directory is kept in cache, as the files of a
 * plan mostly share theirs.
 */
int
control_may_read(struct client *c, const char *path,
    struct control_readcache *cache, char **why)
{
	struct peer	*p = &c->peer;
	struct stat	 sb;
	char		*real = NULL, *dir, *slash;
	int		 ok;

	*why = NULL;
	if (p->is_admin)
		return (1);
	control_groups_db(p);
	if ((real = realpath(path, NULL)) == NULL) {
		*why = xprintf("%s: %s", path, strerror(errno));
		return (0);
	}
	if (stat(real, &sb) == -1) {
		*why = xprintf("%s: %s", path, strerror(errno));
		free(real);
		return (0);
	}
	if (!control_mode_allows(p, &sb, S_IRUSR, S_IRGRP, S_IROTH)) {
		*why = xprintf("file not readable by uid %ld (mode %04o, "
		    "owner uid %ld)", (long)p->uid, (unsigned)(sb.st_mode &
		    07777), (long)sb.st_uid);
		free(real);
		return (0);
	}
	dir = real;
	if ((slash = strrchr(real, '/')) != NULL)
		*slash = '\0';
	if (cache->dir == NULL || strcmp(cache->dir, dir) != 0) {
		free(cache->dir);
		free(cache->why);
		cache->why = NULL;
		cache->dir = xstrdup(dir);
		cache->ok = control_may_search(p, dir, &cache->why);
	}
	ok = cache->ok;
	if (!ok)
		*why = xstrdup(cache->why);
	free(real);
	return (ok);
}

/* Forgets what control_may_read kept. */
void
control_readcache_clear(struct control_readcache *cache)
{
	free(cache->dir);
	free(cache->why);
	memset(cache, 0, sizeof *cache);
}

const struct peer *
control_peer(struct client *c)
{
	return (&c->peer);
}

/* Drops a reference; the last one frees the client. */
static void
control_unref(struct client *c)
{
	if (--c->refs > 0)
		return;
	event_free(c->resume);
	event_free(c->partial);
	free(c->peer.user);
	free(c->peer.groups);
	free(c);
}

/* Closes the socket at once; a request in flight keeps the struct alive. */
static void
control_close(struct client *c)
{
	if (c->dead)
		return;
	c->dead = 1;
	log_debug("client %s (pid %ld) closed", c->peer.user,
	    (long)c->peer.pid);
	bufferevent_free(c->bev);
	c->bev = NULL;
	TAILQ_REMOVE(&control.clients, c, entry);
	control.n_clients--;
	control_unref(c);
}

/* Queues one message (stolen) for the client, pausing it when it reads slowly. */
void
control_send(struct client *c, json_t *msg)
{
	struct evbuffer	*out;
	char		*line;
	size_t		 len;

	if (c->dead) {
		json_decref(msg);
		return;
	}
	line = rpc_encode(msg, &len);
	json_decref(msg);
	out = bufferevent_get_output(c->bev);
	evbuffer_add(out, line, len);
	free(line);
	if (!c->paused && evbuffer_get_length(out) > CONTROL_OUTPUT_HIGH) {
		c->paused = 1;
		bufferevent_disable(c->bev, EV_READ);
	}
}

/* Sends a last error and closes once it is written. */
static void
control_send_and_close(struct client *c, json_t *msg)
{
	control_send(c, msg);
	if (c->dead)
		return;
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
}

/* A request finished: go on with whatever the client sent meanwhile. */
void
control_request_done(struct client *c)
{
	c->busy = 0;
	if (!c->dead)
		event_active(c->resume, EV_TIMEOUT, 0);
	control_unref(c);
}

/* The resume event, so buffered requests never run inside a reply's stack. */
static void
control_resume(evutil_socket_t fd, short events, void *arg)
{
	struct client	*c = arg;

	(void)fd;
	(void)events;
	if (!c->dead)
		control_process(c);
}

/* A line that started arriving must end within idle_timeout, or a client
 * dripping a byte at a time would hold its slot forever. */
static void
control_partial(struct client *c)
{
	struct timeval	 tv;

	if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 ||
	    control.idle_timeout == 0) {
		evtimer_del(c->partial);
		return;
	}
	if (evtimer_pending(c->partial, NULL))
		return;
	tv.tv_sec = control.idle_timeout;
	tv.tv_usec = 0;
	evtimer_add(c->partial, &tv);
}

static void
control_partial_expired(evutil_socket_t fd, short events, void *arg)
{
	struct client	*c = arg;

	(void)fd;
	(void)events;
	if (c->dead || c->busy)
		return;
	log_warnx("client %s (pid %ld): a request line took over %d s to "
	    "arrive, disconnecting", c->peer.user, (long)c->peer.pid,
	    control.idle_timeout);
	control_send_and_close(c, rpc_error(NULL, MIGD_ERR_REQUEST_TIMEOUT,
	    "request_timeout", NULL, "a request line took over %d s "
	    "(idle_timeout)", control.idle_timeout));
}

/* Runs every complete line in the input, one request at a time. */
static void
control_process(struct client *c)
{
	struct evbuffer		*in;
	struct evbuffer_ptr	 eol;
	size_t			 len;
	char			*line;

	if (c->dead || c->closing)
		return;
	in = bufferevent_get_input(c->bev);
	while (!c->busy && !c->paused && !c->closing && !c->dead) {
		eol = evbuffer_search_eol(in, NULL, NULL, EVBUFFER_EOL_LF);
		if (eol.pos == -1) {
			if (evbuffer_get_length(in) > control.max_request)
				goto too_large;
			/* At EOF a last line without its newline still counts. */
			if (!c->eof || evbuffer_get_length(in) == 0)
				break;
			len = evbuffer_get_length(in);
			line = xmalloc(len + 1);
			evbuffer_remove(in, line, len);
		} else {
			len = (size_t)eol.pos;
			if (len > control.max_request)
				goto too_large;
			line = xmalloc(len + 1);
			evbuffer_remove(in, line, len + 1);
		}
		if (len > 0 && line[len - 1] == '\r')
			len--;
		line[len] = '\0';
		evtimer_del(c->partial);	/* a whole line arrived */
		if (strspn(line, " \t") != len) {
			c->busy = 1;
			c->refs++;
			cmd_dispatch(c, line, len);
		}
		free(line);
	}
	if (c->dead || c->closing || c->paused || c->busy)
		return;
	control_partial(c);
	if (!c->eof) {
		bufferevent_enable(c->bev, EV_READ);
		return;
	}
	/* The peer is done sending: close once its replies are written. */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		control_close(c);
	else
		c->closing = 1;
	return;

too_large:
	log_warnx("client %s (pid %ld): request over %zu bytes, "
	    "disconnecting", c->peer.user, (long)c->peer.pid,
	    control.max_request);
	control_send_and_close(c, rpc_error(NULL, MIGD_ERR_TOO_LARGE,
	    "request_too_large", json_pack("{s:I}", "max_request_bytes",
	    (json_int_t)control.max_request), "request larger than %zu bytes "
	    "(max_request_bytes in [control])",
	    control.max_request));
}

static void
control_read(struct bufferevent *bev, void *arg)
{
	struct client	*c = arg;

	(void)bev;
	/* Stop reading while a request runs: it bounds memory and keeps order. */
	if (c->busy)
		bufferevent_disable(c->bev, EV_READ);
	control_process(c);
}

/* Output drained below the low mark: close, or resume a paused client. */
static void
control_write(struct bufferevent *bev, void *arg)
{
	struct client	*c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			control_close(c);
		return;
	}
	if (c->paused) {
		c->paused = 0;
		control_process(c);
	}
}

static void
control_event(struct bufferevent *bev, short what, void *arg)
{
	struct client	*c = arg;

	(void)bev;
	if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING)) {
		if (c->busy) {
			/* Waiting on its own request is not idleness. */
			bufferevent_enable(c->bev, EV_READ);
			return;
		}
		log_debug("client %s (pid %ld) idle, closing", c->peer.user,
		    (long)c->peer.pid);
	}
	if (what & BEV_EVENT_EOF) {
		/* Half-closed: still answer what it sent before shutting down. */
		c->eof = 1;
		bufferevent_disable(c->bev, EV_READ);
		control_process(c);
		return;
	}
	control_close(c);
}

/*
 * Refuses a client over the limits: max_clients in all, and the last
 * admin_reserve of them for admins only (as PostgreSQL's
 * superuser_reserved_connections), so readers holding connections can
 * never lock an operator out.  True when refused.
 */
static int
control_full(struct client *c)
{
	u_int	 others = control.n_clients - 1;	/* before this one */
	u_int	 limit = (u_int)control.max_clients;

	if (!c->peer.is_admin)
		limit -= (u_int)control.admin_reserve;
	if (others < limit)
		return (0);
	if (c->peer.is_admin || control.admin_reserve == 0) {
		log_warnx("client %s (pid %ld) refused: %d clients already",
		    c->peer.user, (long)c->peer.pid, control.max_clients);
		control_send_and_close(c, rpc_error(NULL,
		    MIGD_ERR_TOO_MANY_CLIENTS, "too_many_clients", NULL,
		    "too many clients (max_clients is %d)",
		    control.max_clients));
		return (1);
	}
	log_warnx("client %s (uid %ld, pid %ld) refused: %u clients already, "
	    "the last %d of max_clients %d are kept for admins (admin_reserve)",
	    c->peer.user, (long)c->peer.uid, (long)c->peer.pid, others,
	    control.admin_reserve, control.max_clients);
	control_send_and_close(c, rpc_error(NULL, MIGD_ERR_TOO_MANY_CLIENTS,
	    "too_many_clients", NULL, "too many clients: %u connected, and "
	    "the last %d of max_clients %d are kept for admins "
	    "(admin_reserve)", others, control.admin_reserve,
	    control.max_clients));
	return (1);
}

static void
control_accept(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int socklen, void *arg)
{
	struct client	*c;
	struct timeval	 tv;

	(void)l;
	(void)sa;
	(void)socklen;
	(void)arg;
	c = xcalloc(1, sizeof *c);
	c->refs = 1;
	c->bev = bufferevent_socket_new(control.base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		log_warnx("cannot create a buffer for a new client");
		close(fd);
		free(c);
		return;
	}
	c->resume = event_new(control.base, -1, 0, control_resume, c);
	c->partial = evtimer_new(control.base, control_partial_expired, c);
	control_credentials(c, fd);
	TAILQ_INSERT_TAIL(&control.clients, c, entry);
	control.n_clients++;
	bufferevent_setcb(c->bev, control_read, control_write, control_event,
	    c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, control.max_request + 2);
	bufferevent_setwatermark(c->bev, EV_WRITE, CONTROL_OUTPUT_LOW, 0);
	if (control.idle_timeout > 0) {
		tv.tv_sec = control.idle_timeout;
		tv.tv_usec = 0;
		bufferevent_set_timeouts(c->bev, &tv, NULL);
	}
	log_debug("client %s (uid %ld, pid %ld) connected", c->peer.user,
	    (long)c->peer.uid, (long)c->peer.pid);
	if (control_full(c))
		return;
	if (migd.draining) {
		control_send_and_close(c, rpc_error(NULL,
		    MIGD_ERR_SHUTTING_DOWN, "shutting_down", NULL,
		    "migd is shutting down"));
		return;
	}
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Listens again after a pause for lack of file descriptors. */
static void
control_resume_accept(evutil_socket_t fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	(void)arg;
	if (control.listener != NULL)
		evconnlistener_enable(control.listener);
}

static void
control_accept_error(struct evconnlistener *l, void *arg)
{
	struct timeval	 tv = { 0, 100000 };
	int		 err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM) {
		/* The socket stays readable: pause, or we would spin. */
		log_warnx("accept: %s; not accepting for 100 ms",
		    strerror(err));
		evconnlistener_disable(l);
		evtimer_add(control.resume_accept, &tv);
		return;
	}
	log_warnx("accept: %s", strerror(err));
}

/* Refuses to take over a socket another live daemon is answering on. */
static int
control_stale(const struct config *cf, char **cause)
{
	struct sockaddr_un	 sun;
	struct stat		 sb;
	struct ucred		 cred;
	socklen_t		 len;
	const char		*path = cf->socket;
	char			 pid[32] = "";
	int			 fd, r;

	if (lstat(path, &sb) == -1)
		return (0);
	if (!S_ISSOCK(sb.st_mode)) {
		*cause = xprintf("%s exists and is not a socket", path);
		return (-1);
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		return (0);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
	r = connect(fd, (struct sockaddr *)&sun, sizeof sun);
	if (r == 0) {
		len = sizeof cred;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
			snprintf(pid, sizeof pid, " (pid %ld)", (long)cred.pid);
		close(fd);
		*cause = xprintf("another migd%s is already listening on %s: "
		    "stop it first (systemctl stop migd, if it is the "
		    "service), or give this one another socket with "
		    "[control] socket in %s or migd -S PATH", pid, path,
		    cf->path);
		return (-1);
	}
	close(fd);
	unlink(path);
	return (0);
}

/*
 * Warns when others may write the socket's directory: they could take the
 * path while migd is stopped, or (not sticky) replace the socket while it
 * runs, and answer migctl in migd's place.
 */
static void
control_check_dir(const char *path)
{
	struct stat	 sb;
	char		*dir;

	dir = path_dir(path);
	if (stat(dir, &sb) == 0 && (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		if (sb.st_mode & S_ISVTX)
			log_warnx("the socket's directory %s is writable by "
			    "other users (mode %04o): one of them can take "
			    "the path while migd is stopped and answer in its "
			    "place; put the socket in a directory only migd's "
			    "user can write, such as /run/migd", dir,
			    (unsigned)(sb.st_mode & 07777));
		else
			log_warnx("the socket's directory %s is writable by "
			    "other users and not sticky (mode %04o): one of "
			    "them can replace the socket while migd runs and "
			    "answer in its place; put the socket in a "
			    "directory only migd's user can write, such as "
			    "/run/migd", dir, (unsigned)(sb.st_mode & 07777));
	}
	free(dir);
}

/* Why the socket could not be made, and what to do: a new install run by
 * hand has no /run/migd (systemd's RuntimeDirectory= makes it). */
static char *
control_bind_cause(const struct config *cf, int err)
{
	struct stat	 sb;
	struct passwd	*pw;
	char		*dir, *cause, *how, user[64];

	dir = path_dir(cf->socket);
	how = xprintf("or choose another path with [control] socket in %s "
	    "or migd -S PATH", cf->path);
	if ((pw = getpwuid(geteuid())) != NULL)
		snprintf(user, sizeof user, "%s", pw->pw_name);
	else
		snprintf(user, sizeof user, "uid %lu", (unsigned long)geteuid());
	if (err == ENOENT && stat(dir, &sb) == -1)
		cause = xprintf("cannot listen on %s: its directory %s does not "
		    "exist; create it, writable by migd's user %s only (the "
		    "systemd unit's RuntimeDirectory=migd makes /run/migd), %s",
		    cf->socket, dir, user, how);
	else if (err == EACCES || err == EPERM)
		cause = xprintf("cannot listen on %s: migd's user %s may not "
		    "create it in %s (%s); give that directory to %s, %s",
		    cf->socket, user, dir, strerror(err), user, how);
	else
		cause = xprintf("cannot listen on %s: %s; %s", cf->socket,
		    strerror(err), how + 3);
	free(how);
	free(dir);
	return (cause);
}

/* Binds the socket file with its configured mode and group. */
static int
control_bind(const struct config *cf, char **cause)
{
	struct sockaddr_un	 sun;
	struct stat		 sb;
	struct group		*gr;
	const char		*group;
	mode_t			 old;
	int			 fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(cf->socket) >= sizeof sun.sun_path) {
		*cause = xprintf("socket path too long (at most %zu bytes): %s",
		    sizeof sun.sun_path - 1, cf->socket);
		return (-1);
	}
	strncpy(sun.sun_path, cf->socket, sizeof sun.sun_path - 1);
	if (control_stale(cf, cause) != 0)
		return (-1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1) {
		*cause = xprintf("socket: %s", strerror(errno));
		return (-1);
	}
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		*cause = control_bind_cause(cf, errno);
		umask(old);
		close(fd);
		return (-1);
	}
	umask(old);
	group = *cf->read_group ? cf->read_group : cf->admin_group;
	if (*group != '\0') {
		if ((gr = getgrnam(group)) == NULL ||
		    chown(cf->socket, (uid_t)-1, gr->gr_gid) == -1) {
			*cause = xprintf("cannot give %s to group %s: %s",
			    cf->socket, group, gr ? strerror(errno) :
			    "no such group");
			goto fail;
		}
	}
	if (chmod(cf->socket, (mode_t)cf->socket_mode) == -1) {
		*cause = xprintf("chmod %s: %s", cf->socket, strerror(errno));
		goto fail;
	}
	if (lstat(cf->socket, &sb) == -1) {
		*cause = xprintf("%s: %s", cf->socket, strerror(errno));
		goto fail;
	}
	control.path_dev = sb.st_dev;
	control.path_ino = sb.st_ino;
	control_check_dir(cf->socket);
	return (fd);
fail:
	unlink(cf->socket);
	close(fd);
	return (-1);
}

/* Takes the limits that SIGHUP may change; the socket itself stays. */
void
control_reconfigure(const struct config *cf)
{
	control.max_clients = cf->max_clients;
	control.admin_reserve = cf->admin_reserve;
	control.max_request = (size_t)cf->max_request_bytes;
	control.idle_timeout = cf->idle_timeout;
	free(control.admin_group);
	free(control.read_group);
	control.admin_group = xstrdup(cf->admin_group);
	control.read_group = xstrdup(cf->read_group);
	if (control.path != NULL && strcmp(control.path, cf->socket) != 0) {
		log_warnx("the socket path changed to %s: restart migd to "
		    "listen there (still on %s)", cf->socket, control.path);
	}
}

/* Listens on fd when given one (socket activation), else binds the path. */
int
control_init(struct event_base *base, const struct config *cf, int fd,
    char **cause)
{
	memset(&control, 0, sizeof control);
	TAILQ_INIT(&control.clients);
	control.base = base;
	control_reconfigure(cf);
	if (fd == -1) {
		if ((fd = control_bind(cf, cause)) == -1)
			return (-1);
		control.path = xstrdup(cf->socket);
	}
	evutil_make_socket_nonblocking(fd);
	control.listener = evconnlistener_new(base, control_accept, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, fd);
	if (control.listener == NULL) {
		*cause = xprintf("listen: %s", strerror(errno));
		if (control.path != NULL)
			control_unlink();
		close(fd);
		return (-1);
	}
	evconnlistener_set_error_cb(control.listener, control_accept_error);
	control.resume_accept = evtimer_new(base, control_resume_accept, NULL);
	return (0);
}

/* Removes the socket file if it still is the one we bound: a newer daemon
 * may have put its own there since. */
static void
control_unlink(void)
{
	struct stat	 sb;

	if (lstat(control.path, &sb) == -1)
		return;
	if (!S_ISSOCK(sb.st_mode) || sb.st_dev != control.path_dev ||
	    sb.st_ino != control.path_ino) {
		log_info("%s is no longer the socket this migd made: left in "
		    "place", control.path);
		return;
	}
	unlink(control.path);
}

/* Stops accepting and removes the socket file: the first step of exiting. */
void
control_shutdown(void)
{
	if (control.listener != NULL) {
		evconnlistener_free(control.listener);
		control.listener = NULL;
	}
	if (control.resume_accept != NULL) {
		event_free(control.resume_accept);
		control.resume_accept = NULL;
	}
	if (control.path != NULL) {
		control_unlink();
		free(control.path);
		control.path = NULL;
	}
}

u_int
control_clients(void)
{
	return (control.n_clients);
}

/* True when no request is running and no reply waits to be written. */
int
control_idle(void)
{
	struct client	*c;

	TAILQ_FOREACH(c, &control.clients, entry) {
		if (c->busy || evbuffer_get_length(
		    bufferevent_get_output(c->bev)) != 0)
			return (0);
	}
	return (1);
}

void
control_free(void)
{
	struct client	*c;

	control_shutdown();
	while ((c = TAILQ_FIRST(&control.clients)) != NULL)
		control_close(c);
	free(control.admin_group);
	free(control.read_group);
}
