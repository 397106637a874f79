/*
 * JSON-RPC 2.0 messages: parsing and validating one request line, checking
 * params against a command's spec, and building replies.  Pure: no sockets,
 * so unit tests and the fuzzer call it directly.
 */
#include <stdlib.h>
#include <string.h>

#include "migd.h"

static const char *rpc_type_names[] = { "a string", "an integer", "a boolean",
    "a non-empty array of strings",
    "a string or a non-empty array of strings",
    "a non-empty array of objects {\"path\": a non-empty string, "
    "\"text\": a string}" };

/* Builds an error reply; data may carry more fields and is stolen. */
json_t *
rpc_error(json_t *id, int code, const char *kind, json_t *data,
    const char *fmt, ...)
{
	va_list	 ap;
	char	*msg, *raw;
	json_t	*err;

	va_start(ap, fmt);
	xvasprintf(&raw, fmt, ap);
	va_end(ap);
	/* Messages quote input (jansson's, the server's): never let a cut or
	 * invalid UTF-8 sequence make the reply itself impossible. */
	msg = utf8_sanitize(raw);
	free(raw);
	if (data == NULL)
		data = json_object();
	json_object_set_new(data, "kind", json_string(kind));
	err = json_pack("{s:s, s:O, s:{s:i, s:s, s:o}}", "jsonrpc", "2.0",
	    "id", id ? id : json_null(), "error", "code", code, "message", msg,
	    "data", data);
	if (err == NULL)
		err = json_pack("{s:s, s:n, s:{s:i, s:s, s:{s:s}}}", "jsonrpc",
		    "2.0", "id", "error", "code", MIGD_ERR_INTERNAL, "message",
		    "internal error: cannot build the error reply", "data",
		    "kind", "internal");
	free(msg);
	return (err);
}

/* Wraps a result (stolen) in a reply to id. */
json_t *
rpc_result(json_t *id, json_t *result)
{
	return (json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id",
	    id ? id : json_null(), "result", result ? result : json_null()));
}

/* A notification: progress streamed to a client before its final reply. */
json_t *
rpc_notification(const char *method, json_t *params)
{
	return (json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method",
	    method, "params", params ? params : json_object()));
}

/* A duration for a reply, rounded to 3 decimals: 0.402, never the binary
 * fraction's 0.40200000000000002. */
json_t *
rpc_duration(double v)
{
	long long	 k;

	if (!(v > -1e12 && v < 1e12))
		v = v < 0 ? -1e12 : 1e12;	/* jansson refuses inf, NaN */
	k = (long long)(v * 1000.0 + (v < 0 ? -0.5 : 0.5));
	return (json_real((double)k / 1000.0));
}

/*
 * One compact line, newline included: the framing of the protocol.  Reals
 * get 15 significant digits, so that a rounded duration prints as it was
 * rounded (jansson's default, 17, shows the binary fraction's noise).
 */
char *
rpc_encode(json_t *msg, size_t *len)
{
	const size_t	 flags = JSON_COMPACT | JSON_ENSURE_ASCII |
			    JSON_REAL_PRECISION(15);
	const char	*bad = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{"
			    "\"code\":-32603,\"message\":\"cannot encode "
			    "reply\",\"data\":{\"kind\":\"internal\"}}}";
	char		*line;
	size_t		 n;

	/* Measured first, then written once into its buffer: a reply of a
	 * thousand databases' statuses is megabytes, and growing it by
	 * doubling costs more than the second pass. */
	n = json_dumpb(msg, NULL, 0, flags);
	line = xmalloc(n + 2);
	if (n == 0 || json_dumpb(msg, line, n, flags) != n) {
		free(line);
		n = strlen(bad);
		line = xmalloc(n + 2);
		memcpy(line, bad, n);
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return (line);
}

void
rpc_request_clear(struct rpc_request *req)
{
	json_decref(req->msg);
	memset(req, 0, sizeof *req);
}

/*
 * Parses one line into req.  Returns NULL on success, or the error reply to
 * send (the request is then empty).  An id that is present but invalid still
 * gets a reply, with id null, as JSON-RPC asks.
 */
json_t *
rpc_parse(const char *line, size_t len, struct rpc_request *req)
{
	json_error_t	 jerr;
	json_t		*msg, *v, *id = NULL;
	const char	*key;

	memset(req, 0, sizeof *req);
	msg = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &jerr);
	if (msg == NULL) {
		return (rpc_error(NULL, MIGD_ERR_PARSE, "parse_error", NULL,
		    "parse error: %s at column %d", jerr.text, jerr.column));
	}
	if (!json_is_object(msg)) {
		v = rpc_error(NULL, MIGD_ERR_INVALID_REQUEST,
		    "invalid_request", NULL, "invalid request: %s",
		    json_is_array(msg) ? "batch requests are not supported" :
		    "a request must be a JSON object");
		json_decref(msg);
		return (v);
	}
	if ((v = json_object_get(msg, "id")) != NULL) {
		if (!json_is_string(v) && !json_is_integer(v) &&
		    !json_is_null(v)) {
			json_decref(msg);
			return (rpc_error(NULL, MIGD_ERR_INVALID_REQUEST,
			    "invalid_request", NULL, "invalid request: \"id\" "
			    "must be a string, an integer or null"));
		}
		id = v;
	}
	json_object_foreach(msg, key, v) {
		if (strcmp(key, "jsonrpc") != 0 && strcmp(key, "id") != 0 &&
		    strcmp(key, "method") != 0 && strcmp(key, "params") != 0) {
			v = rpc_error(id, MIGD_ERR_INVALID_REQUEST,
			    "invalid_request", NULL, "invalid request: unknown "
			    "member \"%s\"", key);
			json_decref(msg);
			return (v);
		}
	}
	v = json_object_get(msg, "jsonrpc");
	if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
		v = rpc_error(id, MIGD_ERR_INVALID_REQUEST, "invalid_request",
		    NULL, "invalid request: \"jsonrpc\" must be \"2.0\"");
		json_decref(msg);
		return (v);
	}
	v = json_object_get(msg, "method");
	if (!json_is_string(v) || json_string_length(v) == 0) {
		v = rpc_error(id, MIGD_ERR_INVALID_REQUEST, "invalid_request",
		    NULL, "invalid request: \"method\" must be a non-empty "
		    "string");
		json_decref(msg);
		return (v);
	}
	req->method = json_string_value(v);
	v = json_object_get(msg, "params");
	if (v != NULL && !json_is_object(v)) {
		/* An array is valid JSON-RPC that migd does not take. */
		v = json_is_array(v) ? rpc_error(id, MIGD_ERR_INVALID_PARAMS,
		    "invalid_params", NULL, "invalid params: migd takes named "
		    "parameters (an object), not an array") : rpc_error(id,
		    MIGD_ERR_INVALID_REQUEST, "invalid_request", NULL,
		    "invalid request: \"params\" must be an object");
		json_decref(msg);
		memset(req, 0, sizeof *req);
		return (v);
	}
	if (v == NULL) {
		v = json_object();
		json_object_set_new(msg, "params", v);
	}
	req->params = v;
	req->msg = msg;
	req->id = id;
	return (NULL);
}

/* A non-empty array of strings: accept's revisions, stamp's several. */
static int
rpc_is_strings(json_t *v)
{
	size_t	 i;
	int	 good;

	good = json_is_array(v) && json_array_size(v) > 0;
	for (i = 0; good && i < json_array_size(v); i++)
		good = json_is_string(json_array_get(v, i));
	return (good);
}

/* A non-empty array of files as lint is sent them: each an object of a
 * non-empty string path and a string text, nothing else. */
static int
rpc_is_files(json_t *v)
{
	json_t	*f, *path;
	size_t	 i;
	int	 good;

	good = json_is_array(v) && json_array_size(v) > 0;
	json_array_foreach(v, i, f) {
		path = json_object_get(f, "path");
		good = good && json_is_object(f) && json_object_size(f) == 2 &&
		    json_is_string(path) && json_string_length(path) > 0 &&
		    json_is_string(json_object_get(f, "text"));
	}
	return (good);
}

/* Checks params against a spec: no unknown names, right types, required set. */
int
rpc_check_params(json_t *params, const struct rpc_param *spec, char **cause)
{
	const struct rpc_param	*p;
	const char		*key;
	json_t			*v;
	int			 good;

	json_object_foreach(params, key, v) {
		for (p = spec; p != NULL && p->name != NULL; p++) {
			if (strcmp(p->name, key) == 0)
				break;
		}
		if (p == NULL || p->name == NULL) {
			*cause = xprintf("unknown parameter \"%s\"", key);
			return (-1);
		}
		switch (p->type) {
		case RPC_STRING:
			good = json_is_string(v);
			break;
		case RPC_INT:
			good = json_is_integer(v);
			break;
		case RPC_BOOL:
			good = json_is_boolean(v);
			break;
		case RPC_STRINGS:
			good = rpc_is_strings(v);
			break;
		case RPC_STRING_OR_STRINGS:
			good = json_is_string(v) || rpc_is_strings(v);
			break;
		case RPC_FILES:
			good = rpc_is_files(v);
			break;
		default:
			good = 0;
		}
		if (!good) {
			*cause = xprintf("parameter \"%s\" must be %s", key,
			    rpc_type_names[p->type]);
			return (-1);
		}
	}
	for (p = spec; p != NULL && p->name != NULL; p++) {
		if (p->required && json_object_get(params, p->name) == NULL) {
			*cause = xprintf("missing parameter \"%s\"", p->name);
			return (-1);
		}
	}
	return (0);
}
