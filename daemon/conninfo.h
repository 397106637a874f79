/* The conninfo shown to people (migd -n, the log, replies): masked whatever
 * its form; pure, with its unit tests in test_config. */
#ifndef MIGD_CONNINFO_H
#define MIGD_CONNINFO_H

char	*conninfo_mask(const char *);
char	*conninfo_error(const char *, const char *);
char	*conninfo_scrub(const char *, const char *);
int	 conninfo_has_secret(const char *);
int	 conninfo_dbname_nested(const char *);

#endif
