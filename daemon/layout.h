/* Other tools' migration layouts read as they are (pure: no I/O). */
#ifndef MIGD_LAYOUT_H
#define MIGD_LAYOUT_H

#include <stddef.h>
#include <time.h>

#include "migfile.h"
#include "util.h"

/* [migrations] format; the order is the contract's, AUTO first (0). */
enum layout_format {
	LAYOUT_AUTO = 0,
	LAYOUT_MIGD,
	LAYOUT_DBMATE,
	LAYOUT_GOLANG_MIGRATE,
	LAYOUT_SQLX,
	LAYOUT_DIESEL,
	LAYOUT_GOOSE,
	LAYOUT_FLYWAY,
	LAYOUT_NFORMATS
};

/* What one file is in a two-file layout (migfile.piece). */
enum layout_piece {
	LAYOUT_PIECE_WHOLE = 0,	/* up and down (if any) in one file */
	LAYOUT_PIECE_UP,	/* NNN_name.up.sql, diesel's up.sql, V... */
	LAYOUT_PIECE_DOWN,	/* NNN_name.down.sql, diesel's down.sql, U... */
	LAYOUT_PIECE_WEAK	/* auto: plain SQL under a name no tool reads
				   (schema.sql): judged with the directory */
};

#define LAYOUT_NAMES "auto, migd, dbmate, golang-migrate, sqlx, diesel, " \
	"goose, flyway"

const char	*layout_name(enum layout_format);
/* Flyway's order of two versions (1 < 1.1 < 2 < 10; 1.0 is 1): <0, 0, >0. */
int		 layout_cmp_flyway(const char *, const char *);
int		 layout_parse_name(const char *, enum layout_format *);
/* Whether sqlx's checksum (hex of a SHA-384) is of the file read as up. */
int		 layout_sqlx_sum_ok(const char *, const char *);
/* Flyway's checksum of the script read as up (a signed 32-bit CRC). */
long		 layout_flyway_sum(const char *);
const char	*layout_no_down(const struct migfile *);
/* goose's Go migration names (VERSION_name.go), read as placeholders. */
int		 layout_goose_go(const char *);
const char	*layout_unfinished_kind(const struct migfile *);
const char	*layout_unfinished_fix(const struct migfile *);
const char	*layout_no_tx(const struct migfile *);
/* Whether a directory name of n bytes is a diesel migration's. */
int		 layout_diesel_dir(const char *, size_t);
/*
 * diesel's metadata.toml (path, text, length): 0 with *notx 1 when it says
 * run_in_transaction = false, 0 with *notx 0 when it says true or nothing,
 * -1 with the problems in errs for anything else.
 */
int		 layout_diesel_meta(const char *, const char *, size_t, int *,
		     struct errlist *);

/*
 * One file, named rel (its path under the migrations directory) and shown as
 * path, read as fmt (AUTO: as what it looks like).  Returns 0 with *out set;
 * 1 when the file is no migration of that layout (*skip gets why, to free);
 * -1 with the problems in errs and *out what could be read, or NULL.
 */
int		 layout_file(enum layout_format, const char *, const char *,
		     const char *, size_t, struct migfile **, char **,
		     struct errlist *);
/*
 * layout_file of the text in *buf (allocated, with room for a NUL after its
 * length): a file that is one section as it was read (no CR, no BOM) keeps
 * the buffer as that section's text, and *buf becomes NULL.
 */
int		 layout_file_buf(enum layout_format, const char *,
		     const char *, char **, size_t, struct migfile **, char **,
		     struct errlist *);

/*
 * After a directory's files were read: settles the layout (AUTO: the one
 * every file has; a mix is refused), joins each up file to its down file,
 * and chains the revisions in the tool's order.  set->files stays sorted by
 * path.  Returns the layout, or -1 with the problems in errs.
 */
int		 layout_assemble(enum layout_format, const char *,
		     struct migset *, struct errlist *);

/* A new migration's files (layout_create.c), paths under the directory. */
struct layout_create {
	char	*dir;		/* to create first (diesel), or NULL */
	char	*up;		/* the file, or the up file */
	char	*up_text;
	char	*down;		/* the down file, or NULL */
	char	*down_text;
};
int		 layout_create(enum layout_format, const char *,
		     const char *, int, time_t, const char *,
		     struct layout_create *, char **);
void		 layout_create_clear(struct layout_create *);

#endif
