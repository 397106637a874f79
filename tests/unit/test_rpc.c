/* Unit tests of JSON-RPC parsing, validation and encoding. */
#include <stdlib.h>
#include <string.h>

#include "migd.h"
#include "tap.h"

/* Parses a line; returns the error code, or 0 when it is a valid request. */
static int
code_of(const char *line, struct rpc_request *req, char **kind)
{
	json_t	*err;
	int	 code;

	if ((err = rpc_parse(line, strlen(line), req)) == NULL) {
		*kind = NULL;
		return (0);
	}
	code = (int)json_integer_value(json_object_get(json_object_get(err,
	    "error"), "code"));
	*kind = xstrdup(json_string_value(json_object_get(json_object_get(
	    json_object_get(err, "error"), "data"), "kind")));
	json_decref(err);
	return (code);
}

static void
expect(const char *line, int want, const char *kind_want, const char *what)
{
	struct rpc_request	 req;
	char			*kind;

	is_int(code_of(line, &req, &kind), want, "%s", what);
	if (want != 0)
		is_str(kind, kind_want, "%s: kind", what);
	else
		rpc_request_clear(&req);
	free(kind);
}

int
main(void)
{
	static const struct rpc_param spec[] = {
		{ "target", RPC_STRING, 1 },
		{ "dry_run", RPC_BOOL, 0 },
		{ "limit", RPC_INT, 0 },
		{ NULL, RPC_STRING, 0 }
	};
	static const struct rpc_param list_spec[] = {
		{ "revs", RPC_STRING_OR_STRINGS, 1 },
		{ NULL, RPC_STRING, 0 }
	};
	struct rpc_request	 req;
	json_t			*msg, *params;
	char			*kind, *cause = NULL, *line;
	size_t			 len;

	/* A good request. */
	is_int(code_of("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"status\"}",
	    &req, &kind), 0, "valid request");
	is_str(req.method, "status", "method");
	is_int(json_integer_value(req.id), 7, "id");
	ok(json_is_object(req.params) && json_object_size(req.params) == 0,
	    "missing params become an empty object");
	rpc_request_clear(&req);

	is_int(code_of("{\"jsonrpc\":\"2.0\",\"method\":\"status\"}", &req,
	    &kind), 0, "notification is valid");
	ok(req.id == NULL, "notification has no id");
	rpc_request_clear(&req);
	expect("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"x\","
	    "\"params\":{}}", 0, NULL, "string id and empty params");
	expect("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"x\"}", 0, NULL,
	    "null id");

	/* Parse errors. */
	expect("{", MIGD_ERR_PARSE, "parse_error", "truncated JSON");
	expect("garbage", MIGD_ERR_PARSE, "parse_error", "garbage");
	expect("{\"jsonrpc\":\"2.0\",\"method\":\"\xff\"}", MIGD_ERR_PARSE,
	    "parse_error", "invalid UTF-8");
	expect("{\"a\":1,\"a\":2}", MIGD_ERR_PARSE, "parse_error",
	    "duplicate keys");

	/* jansson quotes the bad input in its message, cutting a UTF-8
	 * character: the error reply must still be built (found by fuzzing). */
	expect("\"\\u0\xd0\xb9\"", MIGD_ERR_PARSE, "parse_error",
	    "parse error quoting half a character");
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\\u0\xd0\xb9\"}",
	    MIGD_ERR_PARSE, "parse_error", "request with a broken escape");

	/* Invalid requests. */
	expect("[1,2]", MIGD_ERR_INVALID_REQUEST, "invalid_request",
	    "batch");
	expect("42", MIGD_ERR_INVALID_REQUEST, "invalid_request", "number");
	expect("\"status\"", MIGD_ERR_INVALID_REQUEST, "invalid_request",
	    "string");
	expect("{\"id\":1,\"method\":\"status\"}", MIGD_ERR_INVALID_REQUEST,
	    "invalid_request", "missing jsonrpc");
	expect("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"status\"}",
	    MIGD_ERR_INVALID_REQUEST, "invalid_request", "wrong jsonrpc");
	expect("{\"jsonrpc\":\"2.0\",\"id\":1}", MIGD_ERR_INVALID_REQUEST,
	    "invalid_request", "missing method");
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}",
	    MIGD_ERR_INVALID_REQUEST, "invalid_request", "method not string");
	expect("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"s\"}",
	    MIGD_ERR_INVALID_REQUEST, "invalid_request", "fractional id");
	expect("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"s\"}",
	    MIGD_ERR_INVALID_REQUEST, "invalid_request", "object id");
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"s\",\"x\":1}",
	    MIGD_ERR_INVALID_REQUEST, "invalid_request", "unknown member");
	expect("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"s\",\"params\":[]}",
	    MIGD_ERR_INVALID_PARAMS, "invalid_params", "positional params");

	/* The error reply keeps a valid id. */
	line = "{\"jsonrpc\":\"1.0\",\"id\":9,\"method\":\"s\"}";
	msg = rpc_parse(line, strlen(line), &req);
	ok(msg != NULL && json_integer_value(json_object_get(msg, "id")) == 9,
	    "error reply carries the request's id");
	json_decref(msg);

	/* Params against a spec. */
	params = json_pack("{s:s, s:b}", "target", "head", "dry_run", 1);
	is_int(rpc_check_params(params, spec, &cause), 0, "good params");
	json_decref(params);
	params = json_pack("{s:s, s:i}", "target", "head", "bogus", 1);
	is_int(rpc_check_params(params, spec, &cause), -1, "unknown param");
	is_str(cause, "unknown parameter \"bogus\"", "unknown param message");
	free(cause);
	json_decref(params);
	params = json_pack("{s:i}", "target", 3);
	is_int(rpc_check_params(params, spec, &cause), -1, "wrong type");
	is_str(cause, "parameter \"target\" must be a string",
	    "wrong type message");
	free(cause);
	json_decref(params);
	params = json_pack("{s:b}", "dry_run", 0);
	is_int(rpc_check_params(params, spec, &cause), -1, "missing param");
	is_str(cause, "missing parameter \"target\"", "missing message");
	free(cause);
	json_decref(params);
	params = json_object();
	is_int(rpc_check_params(params, NULL, &cause), 0,
	    "no spec, no params");
	json_decref(params);

	/* One string, or a list of strings (stamp's revisions). */
	params = json_pack("{s:s}", "revs", "a");
	is_int(rpc_check_params(params, list_spec, &cause), 0, "one string");
	json_decref(params);
	params = json_pack("{s:[s, s]}", "revs", "a", "b");
	is_int(rpc_check_params(params, list_spec, &cause), 0, "two strings");
	json_decref(params);
	params = json_pack("{s:[]}", "revs");
	is_int(rpc_check_params(params, list_spec, &cause), -1, "empty list");
	is_str(cause, "parameter \"revs\" must be a string or a non-empty "
	    "array of strings", "empty list message");
	free(cause);
	json_decref(params);
	params = json_pack("{s:[s, i]}", "revs", "a", 1);
	is_int(rpc_check_params(params, list_spec, &cause), -1,
	    "a number in the list");
	free(cause);
	json_decref(params);
	params = json_pack("{s:i}", "revs", 1);
	is_int(rpc_check_params(params, list_spec, &cause), -1,
	    "a number for the list");
	free(cause);
	json_decref(params);

	/* A list of strings (accept's revisions): non-empty, strings only. */
	{
		static const struct rpc_param accept_spec[] = {
			{ "revisions", RPC_STRINGS, 1 },
			{ NULL, RPC_STRING, 0 }
		};
		static const char *bad[] = { "{\"revisions\": []}",
		    "{\"revisions\": \"a\"}", "{\"revisions\": [\"a\", 1]}",
		    "{\"revisions\": [null]}" };
		size_t	 b;

		params = json_pack("{s:[s, s]}", "revisions", "a", "b");
		is_int(rpc_check_params(params, accept_spec, &cause), 0,
		    "a list of strings");
		json_decref(params);
		for (b = 0; b < nitems(bad); b++) {
			params = json_loads(bad[b], 0, NULL);
			cause = NULL;
			is_int(rpc_check_params(params, accept_spec, &cause), -1,
			    "refused: %s", bad[b]);
			is_str(cause, "parameter \"revisions\" must be a "
			    "non-empty array of strings", "its message");
			free(cause);
			json_decref(params);
		}
	}

	/* lint's files: objects of a non-empty path and a text, only. */
	{
		static const struct rpc_param files_spec[] = {
			{ "files", RPC_FILES, 1 },
			{ NULL, RPC_STRING, 0 }
		};
		static const char *bad[] = { "{\"files\": []}",
		    "{\"files\": \"a\"}", "{\"files\": [\"a\"]}",
		    "{\"files\": [{\"path\": \"a\"}]}",
		    "{\"files\": [{\"path\": \"\", \"text\": \"\"}]}",
		    "{\"files\": [{\"path\": 1, \"text\": \"\"}]}",
		    "{\"files\": [{\"path\": \"a\", \"text\": \"\", "
		    "\"x\": 1}]}" };
		size_t	 b;

		params = json_loads("{\"files\": [{\"path\": \"a.sql\", "
		    "\"text\": \"\"}]}", 0, NULL);
		is_int(rpc_check_params(params, files_spec, &cause), 0,
		    "a list of files");
		json_decref(params);
		for (b = 0; b < nitems(bad); b++) {
			params = json_loads(bad[b], 0, NULL);
			cause = NULL;
			is_int(rpc_check_params(params, files_spec, &cause), -1,
			    "refused: %s", bad[b]);
			free(cause);
			json_decref(params);
		}
	}

	/* Encoding: one line, newline-terminated, no raw newline inside. */
	params = json_integer(1);
	msg = rpc_result(params, json_pack("{s:s}", "m", "a\nb"));
	json_decref(params);
	line = rpc_encode(msg, &len);
	ok(len == strlen(line) && line[len - 1] == '\n' &&
	    strchr(line, '\n') == line + len - 1, "one line: %s", line);
	free(line);
	json_decref(msg);
	msg = rpc_error(NULL, MIGD_ERR_PARSE, "parse_error", NULL, "bad %d", 1);
	line = rpc_encode(msg, &len);
	is_str(line, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":"
	    "-32700,\"message\":\"bad 1\",\"data\":{\"kind\":\"parse_error\"}}}"
	    "\n", "error encoding");
	free(line);
	json_decref(msg);

	/* Durations: 3 decimals, printed without the binary fraction's noise. */
	msg = json_pack("{s:o, s:o, s:o, s:o}", "a", rpc_duration(0.402),
	    "b", rpc_duration(12.3456789), "c", rpc_duration(1500.0),
	    "d", rpc_duration(0.0004));
	line = rpc_encode(msg, &len);
	is_str(line, "{\"a\":0.402,\"b\":12.346,\"c\":1500.0,\"d\":0.0}\n",
	    "durations rounded to 3 decimals");
	free(line);
	json_decref(msg);

	return (done_testing());
}
