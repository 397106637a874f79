/* Unit tests of what migctl shows people: control characters escaped. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "migctl.h"
#include "tap.h"

struct migctl_opts opts;	/* output.c's; migctl.c defines it */

/* out_escape of n bytes, compared with want. */
static void
esc(const char *in, size_t n, int lines, const char *want, const char *what)
{
	char	*got = out_escape(in, n, lines);

	is_str(got, want, "%s%s", what, lines ? " (lines)" : "");
	free(got);
}

#define ESC(in, lines, want, what) esc(in, sizeof(in) - 1, lines, want, what)

int
main(void)
{
	json_t	*v;
	char	*once;

	ESC("plain text, 'quotes' and \\ too", 0,
	    "plain text, 'quotes' and \\ too", "printable text unchanged");
	ESC("evil \x1b[2J\x07 msg", 0, "evil \\x1b[2J\\x07 msg",
	    "ESC and BEL shown");
	ESC("evil \x1b[2J\x07 msg", 1, "evil \\x1b[2J\\x07 msg",
	    "ESC and BEL shown");
	ESC("a\nb\tc", 0, "a\\nb\\tc", "newline and tab on one line");
	ESC("a\nb\tc", 1, "a\nb\tc", "newline and tab kept");
	ESC("ok\rFAILED", 0, "ok\\rFAILED", "carriage return shown");
	ESC("ok\rFAILED", 1, "ok\\rFAILED", "carriage return shown");
	ESC("a\x7f" "b\x01\x1f", 0, "a\\x7fb\\x01\\x1f", "DEL and C0 shown");
	ESC("a\0b", 0, "a\\x00b", "NUL shown");
	ESC("\xc2\x9b" "31m \xc2\x85", 0, "\\u009b31m \\u0085",
	    "C1 (CSI, NEL) shown");
	ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0", 0,
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0",
	    "UTF-8 beyond C1 unchanged");
	ESC("\xff\xfe", 0, "\\xff\\xfe", "bytes that are not UTF-8 shown");
	ESC("\xe2\x82", 0, "\\xe2\\x82", "a truncated character shown");
	ESC("\xc0\xaf", 0, "\\xc0\\xaf", "an overlong form shown");
	ESC("\xed\xa0\x80", 0, "\\xed\\xa0\\x80", "a surrogate shown");
	ESC("\xf4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80",
	    "beyond U+10FFFF shown");
	ESC("", 0, "", "empty");

	v = json_loads("{\"message\":\"a\\u001bb\",\"detail\":\"l1\\nl2"
	    "\\u0007\",\"hint\":\"t\\tu\\r\",\"errors\":[\"x\\ny\","
	    "{\"message\":\"\\u009b2J\",\"statement\":\"SELECT\\n1\"}],"
	    "\"n\":3,\"ok\":true}", 0, NULL);
	ok(v != NULL, "sample message parses");
	out_clean(v);
	is_str(json_string_value(json_object_get(v, "message")), "a\\x1bb",
	    "message escaped");
	is_str(json_string_value(json_object_get(v, "detail")),
	    "l1\nl2\\x07", "detail keeps its newline, not its BEL");
	is_str(json_string_value(json_object_get(v, "hint")), "t\tu\\r",
	    "hint keeps its tab, not its carriage return");
	is_str(json_string_value(json_array_get(json_object_get(v, "errors"),
	    0)), "x\\ny", "array items escaped, one line");
	is_str(json_string_value(json_object_get(json_array_get(
	    json_object_get(v, "errors"), 1), "message")), "\\u009b2J",
	    "nested objects escaped");
	is_str(json_string_value(json_object_get(json_array_get(
	    json_object_get(v, "errors"), 1), "statement")), "SELECT\n1",
	    "a nested statement keeps its lines");
	is_int(json_integer_value(json_object_get(v, "n")), 3,
	    "numbers untouched");
	once = json_dumps(v, JSON_SORT_KEYS);
	out_clean(v);
	{
		char	*twice = json_dumps(v, JSON_SORT_KEYS);

		is_str(twice, once, "escaping twice changes nothing");
		free(twice);
	}
	free(once);
	json_decref(v);
	return (done_testing());
}
