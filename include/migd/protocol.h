/*
 * The contract between migd and its clients: JSON-RPC 2.0 over a Unix stream
 * socket, one JSON object per line.  Both migd and migctl include this header
 * and nothing else of each other.  Bump MIGD_PROTOCOL_VERSION when a change
 * would break an existing client.
 */
#ifndef MIGD_PROTOCOL_H
#define MIGD_PROTOCOL_H

#define MIGD_PROTOCOL_VERSION	1
#define MIGD_DEFAULT_SOCKET	"/run/migd/migd.sock"
#define MIGD_SOCKET_ENV		"MIGD_SOCKET"
/* migctl: the user migd runs as, when not root, the caller or the owner of
 * the socket's directory. */
#define MIGD_DAEMON_USER_ENV	"MIGD_DAEMON_USER"

/* lint's files: at most so many, and bytes of text in all, in one request
 * (migd parses them on its event loop, ~0.3 s for 256 KiB); the request
 * must also fit the daemon's max_request_bytes. */
#define MIGD_LINT_MAX_FILES	256
#define MIGD_LINT_MAX_TEXT	(256 * 1024)

/* JSON-RPC 2.0 standard error codes. */
#define MIGD_ERR_PARSE			-32700
#define MIGD_ERR_INVALID_REQUEST	-32600
#define MIGD_ERR_METHOD_NOT_FOUND	-32601
#define MIGD_ERR_INVALID_PARAMS		-32602
#define MIGD_ERR_INTERNAL		-32603

/* Application codes; every error also carries a machine-readable data.kind. */
#define MIGD_ERR_TOO_LARGE		-32001	/* request_too_large */
#define MIGD_ERR_TOO_MANY_CLIENTS	-32002	/* too_many_clients */
#define MIGD_ERR_FORBIDDEN		-32003	/* forbidden */
#define MIGD_ERR_DB_UNAVAILABLE		-32004	/* db_unavailable */
#define MIGD_ERR_BUSY			-32005	/* busy, lock_timeout */
#define MIGD_ERR_SHUTTING_DOWN		-32006	/* shutting_down */
#define MIGD_ERR_REQUEST_TIMEOUT	-32007	/* request_timeout */
/* -32010: invalid_migrations, plan_error, unknown_revision,
 * ambiguous_revision */
#define MIGD_ERR_MIGRATIONS		-32010
#define MIGD_ERR_SQL			-32011	/* sql_error */
#define MIGD_ERR_STATE			-32012	/* checksum_mismatch, dirty, ahead */
#define MIGD_ERR_CANCELLED		-32013	/* cancelled */

/* migctl exit codes (contract, documented in migctl(1)). */
#define MIGCTL_EXIT_OK		0	/* success */
#define MIGCTL_EXIT_FAILED	1	/* the operation failed */
#define MIGCTL_EXIT_USAGE	2	/* bad command line */
#define MIGCTL_EXIT_UNREACHABLE	3	/* no daemon at the socket */
#define MIGCTL_EXIT_CHECK	4	/* pending, drift, dirty or ahead */
#define MIGCTL_EXIT_BUSY	5	/* lock wait timed out, or busy */
#define MIGCTL_EXIT_FORBIDDEN	6	/* peer not allowed */
#define MIGCTL_EXIT_UNTRUSTED	7	/* the socket's listener is not migd */

#endif
