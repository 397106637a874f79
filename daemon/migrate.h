/* The migration engine's interface to the commands. */
#ifndef MIGD_MIGRATE_H
#define MIGD_MIGRATE_H

#include "revset.h"

enum migrate_op {
	MIGRATE_STATUS,
	MIGRATE_CURRENT,
	MIGRATE_HEADS,
	MIGRATE_HISTORY,
	MIGRATE_PLAN,
	MIGRATE_SCHEMAS,
	MIGRATE_VERIFY,
	MIGRATE_UPGRADE,
	MIGRATE_DOWNGRADE,
	MIGRATE_STAMP,
	MIGRATE_RESOLVE,
	MIGRATE_ACCEPT,
	MIGRATE_ADOPT,
	MIGRATE_LINT
};

struct files;
void	 migrate_reload(struct database *, struct request *);
void	 migrate_reconfigure(struct database *);
void	 migrate_forget_state(struct database *);
struct files *migrate_files(struct database *);
int	 migrate_idle(struct database *);
void	 migrate_start(struct request *, enum migrate_op);
void	 migrate_cancel(struct request *);
void	 migrate_revisions(struct request *);
void	 migrate_shutdown(struct database *);
int	 migrate_busy(struct database *);
json_t	*migrate_files_status(struct database *);
json_t	*migrate_status_cached(struct database *);
char	*migrate_errors_message(json_t *);

#endif
