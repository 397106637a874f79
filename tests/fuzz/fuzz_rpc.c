/*
 * libFuzzer target: one request line through rpc_parse, then what the
 * dispatcher does with it (rpc_check_params against every command's spec)
 * and every kind of reply it can build, each through rpc_encode.  Checks the
 * framing promise: a reply is one line of ASCII without control bytes that
 * parses back into a JSON-RPC 2.0 object with the request's id.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migd.h"
#include "fuzz_check.h"

/* The specs of daemon/cmd.c's command table (static there): keep in step. */
static const struct rpc_param no_params[] = {
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param history_params[] = {
	{ "limit", RPC_INT, 0 },
	{ "revision", RPC_STRING, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param plan_params[] = {
	{ "target", RPC_STRING, 0 },
	{ "allow_drift", RPC_BOOL, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param upgrade_params[] = {
	{ "target", RPC_STRING, 0 },
	{ "dry_run", RPC_BOOL, 0 },
	{ "allow_drift", RPC_BOOL, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param downgrade_params[] = {
	{ "target", RPC_STRING, 1 },
	{ "dry_run", RPC_BOOL, 0 },
	{ "allow_drift", RPC_BOOL, 0 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param stamp_params[] = {
	{ "revision", RPC_STRING, 1 },
	{ NULL, RPC_STRING, 0 }
};
static const struct rpc_param resolve_params[] = {
	{ "revision", RPC_STRING, 1 },
	{ "state", RPC_STRING, 1 },
	{ NULL, RPC_STRING, 0 }
};

static const struct {
	const char		*name;
	const struct rpc_param	*params;
} specs[] = {
	{ "current", no_params },
	{ "downgrade", downgrade_params },
	{ "heads", no_params },
	{ "history", history_params },
	{ "plan", plan_params },
	{ "reload", no_params },
	{ "resolve", resolve_params },
	{ "schemas", no_params },
	{ "stamp", stamp_params },
	{ "status", no_params },
	{ "upgrade", upgrade_params },
	{ "verify", no_params },
	{ "version", no_params },
};

/* Encodes msg (stolen) and checks the line; id is what it must answer to. */
static void
encode_check(json_t *msg, json_t *id, int want_id)
{
	json_error_t	 jerr;
	json_t		*back, *v;
	char		*line;
	size_t		 len, i;

	FUZZ_CHECK(msg != NULL, "no reply built");
	line = rpc_encode(msg, &len);
	FUZZ_CHECK(len > 0 && len == strlen(line), "length %zu, strlen %zu",
	    len, strlen(line));
	FUZZ_CHECK(line[len - 1] == '\n', "line does not end in a newline");
	for (i = 0; i + 1 < len; i++) {
		/* JSON_ENSURE_ASCII escapes all but DEL, which is fine. */
		FUZZ_CHECK((unsigned char)line[i] >= 0x20 &&
		    (unsigned char)line[i] < 0x80,
		    "byte 0x%02x at %zu of an encoded line",
		    (unsigned char)line[i], i);
	}
	back = json_loadb(line, len - 1, JSON_REJECT_DUPLICATES, &jerr);
	FUZZ_CHECK(back != NULL && json_is_object(back),
	    "reply does not parse back: %s: %s", jerr.text, line);
	v = json_object_get(back, "jsonrpc");
	FUZZ_CHECK(json_is_string(v) && strcmp(json_string_value(v), "2.0") ==
	    0, "reply without jsonrpc 2.0: %s", line);
	if (want_id) {
		v = json_object_get(back, "id");
		FUZZ_CHECK(v != NULL, "reply without id: %s", line);
		FUZZ_CHECK(json_equal(v, id != NULL ? id : json_null()),
		    "reply id differs from the request's: %s", line);
	}
	json_decref(back);
	free(line);
	json_decref(msg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_request	 req;
	json_t			*err, *params, *whole, *id;
	char			*cause;
	size_t			 i;
	int			 r, known = 0;

	err = rpc_parse((const char *)data, size, &req);
	if (err != NULL) {
		FUZZ_CHECK(req.msg == NULL && req.method == NULL &&
		    req.params == NULL && req.id == NULL,
		    "failed parse left a request behind");
		/*
		 * An invalid request is answered with its id when it has a
		 * valid one (JSON-RPC 2.0, 5), else with id null.
		 */
		whole = json_loadb((const char *)data, size,
		    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
		id = json_object_get(whole, "id");
		if (!json_is_string(id) && !json_is_integer(id))
			id = NULL;
		encode_check(err, id, 1);
		json_decref(whole);
		return (0);
	}
	FUZZ_CHECK(json_is_object(req.msg), "request is not an object");
	FUZZ_CHECK(req.method != NULL && *req.method != '\0', "no method");
	FUZZ_CHECK(json_is_object(req.params), "params not an object");
	FUZZ_CHECK(req.id == NULL || json_is_string(req.id) ||
	    json_is_integer(req.id) || json_is_null(req.id), "bad id type");

	for (i = 0; i < nitems(specs); i++) {
		cause = NULL;
		r = rpc_check_params(req.params, specs[i].params, &cause);
		FUZZ_CHECK((r == 0 && cause == NULL) ||
		    (r == -1 && cause != NULL), "check_params %d", r);
		if (strcmp(specs[i].name, req.method) == 0) {
			known = 1;
			if (r != 0) {
				encode_check(rpc_error(req.id,
				    MIGD_ERR_INVALID_PARAMS, "invalid_params",
				    NULL, "invalid params for %s: %s",
				    req.method, cause), req.id, 1);
			}
		}
		free(cause);
	}
	if (!known) {
		encode_check(rpc_error(req.id, MIGD_ERR_METHOD_NOT_FOUND,
		    "method_not_found", json_pack("{s:s}", "method",
		    req.method), "unknown method \"%s\"", req.method), req.id,
		    1);
	}
	/* A result that echoes the request, and a progress notification. */
	encode_check(rpc_result(req.id, json_pack("{s:s, s:O}", "method",
	    req.method, "params", req.params)), req.id, 1);
	params = json_deep_copy(req.params);
	encode_check(rpc_notification(req.method, params), NULL, 0);
	rpc_request_clear(&req);
	FUZZ_CHECK(req.msg == NULL, "request not cleared");
	return (0);
}
