/* Ingest's row rules as DuckDB scalar functions, registered by the same extension as
 * jkn_hmac_sha256 (jkn_pseudonym.c calls jkn_register_rules). They run on every value of a national extract,
 * where DuckDB's own SQL for them cost about 0.7 CPU s per million rows (BENCHMARKS.md, "Ingest, row rules").
 * Each returns exactly what the SQL it stands for returns (tests/test_row_rules.py compares them on every
 * Unicode code point and on crafted NIKs); ingest uses the SQL wherever the extension is not loaded.
 *
 * jkn_text(value VARCHAR) -> VARCHAR
 *   nullif(trim(value), ''): DuckDB's trim() removes leading and trailing code points of Unicode category
 *   Zs (space separators; not tabs or line breaks), decoded with utf8proc. The Zs set is fixed since
 *   Unicode 6.3: U+0020, U+00A0, U+1680, U+2000-U+200A, U+202F, U+205F, U+3000. A value that starts and
 *   ends with an ASCII byte other than a space (nearly every value of an extract) is copied as it is.
 *
 * jkn_nik_valid(nik VARCHAR, provinces VARCHAR) -> BOOLEAN
 *   Whether flows.ingest.pseudonym.nik_problem(nik, provinces) is null: 16 ASCII digits, digits 1-2 one of
 *   `provinces` (a constant: two-digit codes separated by commas, read once when the query is bound),
 *   digits 7-8 (birth day) 01-31 or 41-71, digits 9-10 (birth month) 01-12. False for a null NIK.
 *
 * jkn_digits(value VARCHAR, n INTEGER) -> BOOLEAN
 *   regexp_full_match(value, '[0-9]{n}'): exactly n ASCII digits (RE2's [0-9] is ASCII). Null if either is.
 *
 * jkn_nik_sex(nik VARCHAR) -> VARCHAR and jkn_nik_birth_year(nik VARCHAR, period_month INTEGER) -> INTEGER
 *   For a NIK of 16 ASCII digits (ingest calls them on NIKs that passed their checks only), what
 *   flows/ingest/rules.py computes in SQL: 'F' when the birth day (digits 7-8) is over 40, else 'M'; the
 *   birth year 2000 + digits 11-12 when (that year) * 100 + the birth month (digits 9-10) is not after
 *   `period_month` (YYYYMM), else 1900 + digits 11-12. Null for any other value.
 */
#define DUCKDB_EXTENSION_API_VERSION_MAJOR 1
#define DUCKDB_EXTENSION_API_VERSION_MINOR 5
#define DUCKDB_EXTENSION_API_VERSION_PATCH 6
#include "duckdb_extension.h"
DUCKDB_EXTENSION_EXTERN

#include <stdlib.h>
#include <string.h>

#include "jkn_rules.h"

/* Bytes of the Zs code point that starts at s[i] (s[i..end) valid UTF-8), or 0. */
static idx_t space_at(const unsigned char *s, idx_t i, idx_t end) {
    const unsigned char c = s[i];
    if (c == 0x20) return 1;
    if (c == 0xC2) return (i + 1 < end && s[i + 1] == 0xA0) ? 2 : 0;
    if (c < 0xE1 || c > 0xE3 || i + 2 >= end) return 0;
    const unsigned char b = s[i + 1], d = s[i + 2];
    if (c == 0xE1) return (b == 0x9A && d == 0x80) ? 3 : 0;
    if (c == 0xE3) return (b == 0x80 && d == 0x80) ? 3 : 0;
    if (b == 0x80) return ((d >= 0x80 && d <= 0x8A) || d == 0xAF) ? 3 : 0; /* U+2000-200A, U+202F */
    return (b == 0x81 && d == 0x9F) ? 3 : 0;                                  /* U+205F */
}

/* Bytes of the Zs code point that ends at s[end - 1] (s[begin..end) valid UTF-8), or 0. */
static idx_t space_before(const unsigned char *s, idx_t begin, idx_t end) {
    const unsigned char last = s[end - 1];
    if (last == 0x20) return 1;
    if (last < 0x80) return 0;
    /* a lead byte (0xC2, 0xE1-0xE3) is never a continuation byte, so a match is a whole code point */
    if (end - begin >= 2 && s[end - 2] == 0xC2) return last == 0xA0 ? 2 : 0;
    if (end - begin >= 3 && space_at(s, end - 3, end) == 3) return 3;
    return 0;
}

static void text_rows(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
    (void)info;
    const idx_t count = duckdb_data_chunk_get_size(input);
    duckdb_vector values = duckdb_data_chunk_get_vector(input, 0); /* flat: DuckDB flattens a C function's input */
    duckdb_string_t *strings = duckdb_vector_get_data(values);
    uint64_t *validity = duckdb_vector_get_validity(values);
    duckdb_vector_ensure_validity_writable(output);
    uint64_t *out_validity = duckdb_vector_get_validity(output);
    for (idx_t row = 0; row < count; row++) {
        if (validity && !duckdb_validity_row_is_valid(validity, row)) {
            duckdb_validity_set_row_invalid(out_validity, row);
            continue;
        }
        duckdb_string_t *value = &strings[row];
        const unsigned char *s = (const unsigned char *)duckdb_string_t_data(value);
        idx_t begin = 0, end = duckdb_string_t_length(*value);
        if (end && s[0] != 0x20 && s[0] < 0x80 && s[end - 1] != 0x20 && s[end - 1] < 0x80) {
            duckdb_vector_assign_string_element_len(output, row, (const char *)s, end);
            continue;
        }
        idx_t step;
        while (begin < end && (step = space_at(s, begin, end))) begin += step;
        while (end > begin && (step = space_before(s, begin, end))) end -= step;
        if (begin == end) {
            duckdb_validity_set_row_invalid(out_validity, row);
        } else {
            duckdb_vector_assign_string_element_len(output, row, (const char *)s + begin, end - begin);
        }
    }
}

typedef struct {
    unsigned char known[100]; /* known[10 * d1 + d2]: the province code d1 d2 is known */
} provinces_state;

static void *copy_provinces(void *state) {
    provinces_state *copy = malloc(sizeof(provinces_state));
    if (copy) memcpy(copy, state, sizeof(provinces_state));
    return copy;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* `text`: two-digit codes separated by commas, into `state`; 0 when it is not that. */
static int parse_provinces(const char *text, provinces_state *state) {
    memset(state->known, 0, sizeof state->known);
    const unsigned char *p = (const unsigned char *)text;
    if (!*p) return 1; /* no province known: every NIK is refused, as by the SQL */
    for (;;) {
        if (!is_digit(p[0]) || !is_digit(p[1])) return 0;
        state->known[10 * (p[0] - '0') + (p[1] - '0')] = 1;
        p += 2;
        if (!*p) return 1;
        if (*p++ != ',') return 0;
    }
}

static void bind_provinces(duckdb_bind_info info) {
    int ok = 0;
    provinces_state *state = malloc(sizeof(provinces_state));
    duckdb_client_context context = NULL;
    duckdb_scalar_function_get_client_context(info, &context);
    duckdb_expression argument = duckdb_scalar_function_bind_get_argument(info, 1);
    if (state && context && argument && duckdb_expression_is_foldable(argument)) {
        duckdb_value value = NULL;
        duckdb_error_data error = duckdb_expression_fold(context, argument, &value);
        if (error) {
            duckdb_destroy_error_data(&error);
        } else if (value) {
            if (!duckdb_is_null_value(value)) {
                char *text = duckdb_get_varchar(value);
                ok = text && parse_provinces(text, state);
                if (text) duckdb_free(text);
            }
            duckdb_destroy_value(&value);
        }
    }
    if (argument) duckdb_destroy_expression(&argument);
    if (context) duckdb_destroy_client_context(&context);
    if (ok) {
        duckdb_scalar_function_set_bind_data(info, state, free);
        duckdb_scalar_function_set_bind_data_copy(info, copy_provinces);
    } else {
        free(state);
        duckdb_scalar_function_bind_set_error(
            info, "jkn_nik_valid(nik, provinces): provinces must be a constant VARCHAR of two-digit codes and commas");
    }
}

static int two_digits(const unsigned char *s) { return 10 * (s[0] - '0') + (s[1] - '0'); }

/* The NIK at `row` when it is 16 ASCII digits, else NULL. */
static const unsigned char *nik_digits(duckdb_string_t *strings, uint64_t *validity, idx_t row) {
    if (validity && !duckdb_validity_row_is_valid(validity, row)) return NULL;
    duckdb_string_t *value = &strings[row];
    if (duckdb_string_t_length(*value) != 16) return NULL;
    const unsigned char *s = (const unsigned char *)duckdb_string_t_data(value);
    for (int i = 0; i < 16; i++)
        if (!is_digit(s[i])) return NULL;
    return s;
}

static void nik_rows(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
    const provinces_state *state = duckdb_scalar_function_get_bind_data(info);
    if (!state) {
        duckdb_scalar_function_set_error(info, "jkn_nik_valid: the provinces were not bound");
        return;
    }
    const idx_t count = duckdb_data_chunk_get_size(input);
    duckdb_vector values = duckdb_data_chunk_get_vector(input, 0);
    duckdb_string_t *strings = duckdb_vector_get_data(values);
    uint64_t *validity = duckdb_vector_get_validity(values);
    bool *result = duckdb_vector_get_data(output);
    for (idx_t row = 0; row < count; row++) {
        result[row] = false;
        const unsigned char *s = nik_digits(strings, validity, row);
        if (!s || !state->known[two_digits(s)]) continue;
        const int day = two_digits(s + 6), month = two_digits(s + 8);
        result[row] = ((day >= 1 && day <= 31) || (day >= 41 && day <= 71)) && month >= 1 && month <= 12;
    }
}

/* The rows of `input` whose every column is valid, or all of them where none has a validity mask. */
static int row_valid(uint64_t *first, uint64_t *second, idx_t row) {
    return (!first || duckdb_validity_row_is_valid(first, row)) && (!second || duckdb_validity_row_is_valid(second, row));
}

static void digits_rows(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
    (void)info;
    const idx_t count = duckdb_data_chunk_get_size(input);
    duckdb_vector values = duckdb_data_chunk_get_vector(input, 0), wanted = duckdb_data_chunk_get_vector(input, 1);
    duckdb_string_t *strings = duckdb_vector_get_data(values);
    const int32_t *lengths = duckdb_vector_get_data(wanted);
    uint64_t *validity = duckdb_vector_get_validity(values), *wanted_validity = duckdb_vector_get_validity(wanted);
    bool *result = duckdb_vector_get_data(output);
    duckdb_vector_ensure_validity_writable(output);
    uint64_t *out_validity = duckdb_vector_get_validity(output);
    for (idx_t row = 0; row < count; row++) {
        if (!row_valid(validity, wanted_validity, row)) {
            duckdb_validity_set_row_invalid(out_validity, row);
            continue;
        }
        duckdb_string_t *value = &strings[row];
        const idx_t length = duckdb_string_t_length(*value);
        int ok = lengths[row] >= 0 && length == (idx_t)lengths[row];
        const unsigned char *s = (const unsigned char *)duckdb_string_t_data(value);
        for (idx_t i = 0; ok && i < length; i++) ok = is_digit(s[i]);
        result[row] = ok;
    }
}

static void sex_rows(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
    (void)info;
    const idx_t count = duckdb_data_chunk_get_size(input);
    duckdb_vector values = duckdb_data_chunk_get_vector(input, 0);
    duckdb_string_t *strings = duckdb_vector_get_data(values);
    uint64_t *validity = duckdb_vector_get_validity(values);
    duckdb_vector_ensure_validity_writable(output);
    uint64_t *out_validity = duckdb_vector_get_validity(output);
    for (idx_t row = 0; row < count; row++) {
        const unsigned char *s = nik_digits(strings, validity, row);
        if (!s) {
            duckdb_validity_set_row_invalid(out_validity, row);
            continue;
        }
        duckdb_vector_assign_string_element_len(output, row, two_digits(s + 6) > 40 ? "F" : "M", 1);
    }
}

static void birth_year_rows(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
    (void)info;
    const idx_t count = duckdb_data_chunk_get_size(input);
    duckdb_vector values = duckdb_data_chunk_get_vector(input, 0), periods = duckdb_data_chunk_get_vector(input, 1);
    duckdb_string_t *strings = duckdb_vector_get_data(values);
    const int32_t *period = duckdb_vector_get_data(periods);
    uint64_t *validity = duckdb_vector_get_validity(values), *period_validity = duckdb_vector_get_validity(periods);
    int32_t *result = duckdb_vector_get_data(output);
    duckdb_vector_ensure_validity_writable(output);
    uint64_t *out_validity = duckdb_vector_get_validity(output);
    for (idx_t row = 0; row < count; row++) {
        const unsigned char *s = row_valid(NULL, period_validity, row) ? nik_digits(strings, validity, row) : NULL;
        if (!s) {
            duckdb_validity_set_row_invalid(out_validity, row);
            continue;
        }
        const int32_t year = two_digits(s + 10), month = two_digits(s + 8);
        result[row] = ((2000 + year) * 100 + month <= period[row] ? 2000 : 1900) + year;
    }
}

static int add(duckdb_connection connection, const char *name, duckdb_type returns, int arguments,
               duckdb_scalar_function_bind_t bind, duckdb_scalar_function_t rows) {
    /* `arguments` VARCHARs; a negative count: one VARCHAR, then an INTEGER */
    duckdb_scalar_function function = duckdb_create_scalar_function();
    duckdb_scalar_function_set_name(function, name);
    duckdb_logical_type varchar = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    duckdb_logical_type integer = duckdb_create_logical_type(DUCKDB_TYPE_INTEGER);
    duckdb_logical_type result = duckdb_create_logical_type(returns);
    if (arguments < 0) {
        duckdb_scalar_function_add_parameter(function, varchar);
        duckdb_scalar_function_add_parameter(function, integer);
    }
    for (int i = 0; i < arguments; i++) duckdb_scalar_function_add_parameter(function, varchar);
    duckdb_scalar_function_set_return_type(function, result);
    duckdb_destroy_logical_type(&varchar);
    duckdb_destroy_logical_type(&integer);
    duckdb_destroy_logical_type(&result);
    if (bind) {
        /* special: a null NIK reaches nik_rows (false, not null) and a null provinces reaches the bind */
        duckdb_scalar_function_set_special_handling(function);
        duckdb_scalar_function_set_bind(function, bind);
    }
    duckdb_scalar_function_set_function(function, rows);
    duckdb_state registered = duckdb_register_scalar_function(connection, function);
    duckdb_destroy_scalar_function(&function);
    return registered != DuckDBError;
}

const char *jkn_register_rules(duckdb_connection connection) {
    if (!add(connection, "jkn_text", DUCKDB_TYPE_VARCHAR, 1, NULL, text_rows)) return "jkn_text";
    if (!add(connection, "jkn_nik_valid", DUCKDB_TYPE_BOOLEAN, 2, bind_provinces, nik_rows)) return "jkn_nik_valid";
    if (!add(connection, "jkn_digits", DUCKDB_TYPE_BOOLEAN, -1, NULL, digits_rows)) return "jkn_digits";
    if (!add(connection, "jkn_nik_sex", DUCKDB_TYPE_VARCHAR, 1, NULL, sex_rows)) return "jkn_nik_sex";
    if (!add(connection, "jkn_nik_birth_year", DUCKDB_TYPE_INTEGER, -1, NULL, birth_year_rows))
        return "jkn_nik_birth_year";
    return NULL;
}
