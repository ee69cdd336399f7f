/* clients/cli/output.c linked directly: what the JSON helpers write, for what a run of the CLI
 * cannot easily produce (a figure that is not a number). */
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <math.h>
#include <string.h>

#include "output.h"

/* JSON has no NaN nor Infinity: json-c would write them bare, and every parser would refuse the
 * line. Undefined figures are null. */
Test(output, non_finite_numbers_are_null) {
        cli_json_setup();
        json_object *o = json_object_new_object();
        cr_assert_not_null(o);
        cli_json_add_double(o, "nan", NAN);
        cli_json_add_double(o, "inf", INFINITY);
        cli_json_add_double(o, "minus_inf", -INFINITY);
        cli_json_add_double(o, "half", 0.5);
        cli_json_add_double(o, "third", 1.0 / 3);
        json_object_object_add(o, "ratio", cli_json_new_number(0.0 / 0.0));
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        cr_assert_str_eq(s, "{\"nan\":null,\"inf\":null,\"minus_inf\":null,\"half\":0.5,\"third\":0.333333,"
                            "\"ratio\":null}");

        /* And a strict parser takes it back. */
        json_tokener *tok = json_tokener_new();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        json_object *back = json_tokener_parse_ex(tok, s, (int) strlen(s) + 1);
        cr_assert_not_null(back, "not JSON: %s", s);
        cr_assert(json_object_is_type(json_object_object_get(back, "nan"), json_type_null));
        json_object_put(back);
        json_tokener_free(tok);
        json_object_put(o);
}

/* A file name that is not UTF-8 (Latin-1 "caf\xe9.jpg") is written with U+FFFD for its stray
 * byte, so the line stays JSON a strict parser reads; valid names are kept as they are. */
Test(output, strings_are_valid_utf8) {
        json_object *o = json_object_new_object();
        cr_assert_not_null(o);
        cli_json_add_string(o, "latin1", "caf\xe9.jpg");
        cli_json_add_string(o, "utf8", "caf\xc3\xa9.jpg");
        cli_json_add_string(o, "cut", "x\xc3");
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        cr_assert_str_eq(s, "{\"latin1\":\"caf\xef\xbf\xbd.jpg\",\"utf8\":\"caf\xc3\xa9.jpg\",\"cut\":\"x\xef\xbf\xbd\"}");
        json_tokener *tok = json_tokener_new();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        json_object *back = json_tokener_parse_ex(tok, s, (int) strlen(s) + 1);
        cr_assert_not_null(back, "not strict JSON: %s", s);
        json_object_put(back);
        json_tokener_free(tok);
        json_object_put(o);
}
