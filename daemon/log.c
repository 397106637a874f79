/*
 * Logging in the manner of OpenBSD daemons: log_warn adds strerror, fatal
 * exits.  Lines go to stderr; under systemd (JOURNAL_STREAM set) they carry a
 * <N> priority prefix instead of a timestamp, since journald adds its own.
 * Every message is one line whatever it quotes: control characters from a
 * client, a file or the server are escaped here, so no caller can forget.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "migd.h"

static enum log_level	 log_level = LOG_LVL_INFO;
static int		 log_journal;

static const char *log_names[] = { "error", "warning", "info", "debug" };
static const int log_syslog[] = { 3, 4, 6, 7 };

/* Decides once whether stderr is the journal, which changes the line format. */
void
log_init(enum log_level level)
{
	log_level = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void
log_setlevel(enum log_level level)
{
	log_level = level;
}

int
log_getlevel(void)
{
	return (log_level);
}

/* Accepts the level names of the configuration file, plus "warn". */
int
log_level_parse(const char *s, enum log_level *out)
{
	size_t	 i;

	for (i = 0; i < nitems(log_names); i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return (0);
		}
	}
	if (strcasecmp(s, "warn") == 0) {
		*out = LOG_LVL_WARNING;
		return (0);
	}
	return (-1);
}

const char *
log_level_name(enum log_level level)
{
	return (log_names[level]);
}

/*
 * Writes one line in a single call so that concurrent writers never
 * interleave; what the message quotes (a request's target, a file's text, a
 * server's error) cannot start a line of its own or reach the terminal raw.
 */
static void
log_vwrite(enum log_level level, const char *emsg, const char *fmt, va_list ap)
{
	char		 stamp[32], *raw, *full, *msg, *line;
	struct tm	 tm;
	time_t		 t;

	if (level > log_level)
		return;
	xvasprintf(&raw, fmt, ap);
	full = xprintf("%s%s%s", raw, emsg ? ": " : "", emsg ? emsg : "");
	msg = utf8_escape_controls(full);
	free(full);
	free(raw);
	if (log_journal) {
		line = xprintf("<%d>%s\n", log_syslog[level], msg);
	} else {
		t = time(NULL);
		localtime_r(&t, &tm);
		strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
		line = xprintf("%s %s: %s\n", stamp, log_names[level], msg);
	}
	fputs(line, stderr);
	fflush(stderr);
	free(line);
	free(msg);
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_WARNING, strerror(saved), fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_WARNING, NULL, fmt, ap);
	va_end(ap);
}

void
log_error(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, NULL, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

/* For start-up failures and broken invariants only: never on a request path. */
void
fatal(const char *fmt, ...)
{
	va_list	 ap;
	int	 saved = errno;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LVL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
