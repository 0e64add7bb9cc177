/* A DuckDB extension (C extension API, ABI type C_STRUCT) that pseudonymises NIKs inside DuckDB's threads.
 *
 * jkn_hmac_sha256(value VARCHAR, ipad BLOB, opad BLOB) -> BLOB
 *   HMAC-SHA256 (RFC 2104) of `value`'s bytes as 32 raw bytes; null for a null value.
 *   ipad, opad: the padded key XOR 0x36 / 0x5c, 64 bytes each (flows.ingest.pseudonym.hmac_pads); they must be
 *   constants (a literal, a parameter supplied at execution, getvariable(...)): they are read once, when the
 *   query is bound, and the SHA-256 states after the one block of each pad are kept in the bind data, so each
 *   row costs the compressions of its own bytes only (two for a NIK: one inner block, one outer).
 *
 * The same extension holds two row rules (jkn_text, jkn_nik_valid: jkn_rules.c) and the aggregate
 * jkn_repeated_hashes (jkn_repeats.c).
 *
 * flows/ingest/pseudonym.py loads it into ingest's private connection (flows/ingest/part.py) and calls it
 * through a macro `jkn_person_key(nik)`; without it ingest uses the Arrow UDF over flows/_pseudonym.c, then SQL.
 * The key's pads are never written anywhere by this code: error messages name the argument, not its value,
 * and the copies this code makes are wiped (OPENSSL_cleanse) before they are freed.
 *
 * Built by setup.py with the two vendored headers beside this file (duckdb.h, duckdb_extension.h, DuckDB
 * 1.5.6, MIT: LICENSE-duckdb.txt) and OpenSSL's libcrypto; setup.py appends the metadata footer DuckDB's loader
 * reads (platform, C API version, ABI type).
 */
#define DUCKDB_EXTENSION_NAME jkn_pseudonym
/* the bind callbacks used here became stable C API in v1.5.6 */
#define DUCKDB_EXTENSION_API_VERSION_MAJOR 1
#define DUCKDB_EXTENSION_API_VERSION_MINOR 5
#define DUCKDB_EXTENSION_API_VERSION_PATCH 6
#include "duckdb_extension.h"
/* the API struct DUCKDB_EXTENSION_ENTRYPOINT defines at the end; every call below goes through it */
DUCKDB_EXTENSION_EXTERN

#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "jkn_repeats.h"
#include "jkn_rules.h"

#define PAD_BYTES 64

typedef struct {
    SHA256_CTX inner; /* after ipad */
    SHA256_CTX outer; /* after opad */
} key_state;

static void destroy_state(void *state) {
    if (state) {
        OPENSSL_cleanse(state, sizeof(key_state));
        free(state);
    }
}

static void *copy_state(void *state) {
    key_state *copy = malloc(sizeof(key_state));
    if (copy) memcpy(copy, state, sizeof(key_state));
    return copy;
}

/* Argument `index` folded to a constant BLOB of PAD_BYTES bytes into `out`; 0 when it is not one. */
static int constant_pad(duckdb_bind_info info, duckdb_client_context context, idx_t index, unsigned char *out) {
    int ok = 0;
    duckdb_expression argument = duckdb_scalar_function_bind_get_argument(info, index);
    if (!argument) return 0;
    if (duckdb_expression_is_foldable(argument)) {
        duckdb_value value = NULL;
        duckdb_error_data error = duckdb_expression_fold(context, argument, &value);
        if (error) {
            duckdb_destroy_error_data(&error); /* its message could quote the value: not passed on */
        } else if (value) {
            if (!duckdb_is_null_value(value)) {
                duckdb_blob blob = duckdb_get_blob(value);
                if (blob.data && blob.size == PAD_BYTES) {
                    memcpy(out, blob.data, PAD_BYTES);
                    ok = 1;
                }
                if (blob.data) {
                    OPENSSL_cleanse(blob.data, blob.size);
                    duckdb_free(blob.data);
                }
            }
            duckdb_destroy_value(&value);
        }
    }
    duckdb_destroy_expression(&argument);
    return ok;
}

static void bind_key(duckdb_bind_info info) {
    unsigned char ipad[PAD_BYTES], opad[PAD_BYTES];
    duckdb_client_context context = NULL;
    duckdb_scalar_function_get_client_context(info, &context);
    int ok = context && constant_pad(info, context, 1, ipad) && constant_pad(info, context, 2, opad);
    if (context) duckdb_destroy_client_context(&context);
    key_state *state = ok ? malloc(sizeof(key_state)) : NULL;
    if (state) {
        SHA256_Init(&state->inner);
        SHA256_Update(&state->inner, ipad, PAD_BYTES);
        SHA256_Init(&state->outer);
        SHA256_Update(&state->outer, opad, PAD_BYTES);
        duckdb_scalar_function_set_bind_data(info, state, destroy_state);
        duckdb_scalar_function_set_bind_data_copy(info, copy_state);
    }
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    if (!ok) {
        duckdb_scalar_function_bind_set_error(
            info, "jkn_hmac_sha256(value, ipad, opad): ipad and opad must be constant BLOBs of 64 bytes each");
    } else if (!state) {
        duckdb_scalar_function_bind_set_error(info, "jkn_hmac_sha256: out of memory");
    }
}

static void hmac_rows(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
    const key_state *state = duckdb_scalar_function_get_bind_data(info);
    if (!state) {
        duckdb_scalar_function_set_error(info, "jkn_hmac_sha256: the key was not bound");
        return;
    }
    const idx_t count = duckdb_data_chunk_get_size(input);
    duckdb_vector values = duckdb_data_chunk_get_vector(input, 0); /* flat: DuckDB flattens a C function's input */
    duckdb_string_t *strings = duckdb_vector_get_data(values);
    uint64_t *validity = duckdb_vector_get_validity(values); /* NULL: every value is valid */
    uint64_t *out_validity = NULL;
    if (validity) {
        duckdb_vector_ensure_validity_writable(output);
        out_validity = duckdb_vector_get_validity(output);
    }
    SHA256_CTX ctx;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    for (idx_t row = 0; row < count; row++) {
        if (validity && !duckdb_validity_row_is_valid(validity, row)) {
            duckdb_validity_set_row_invalid(out_validity, row);
            continue;
        }
        duckdb_string_t *value = &strings[row];
        const uint32_t length = duckdb_string_t_length(*value);
        const char *bytes = duckdb_string_t_data(value);
        ctx = state->inner;
        SHA256_Update(&ctx, bytes, length);
        SHA256_Final(digest, &ctx);
        ctx = state->outer;
        SHA256_Update(&ctx, digest, SHA256_DIGEST_LENGTH);
        SHA256_Final(digest, &ctx);
        /* BLOB: no UTF-8 check; the bytes are copied into the vector's own string heap */
        duckdb_vector_assign_string_element_len(output, row, (const char *)digest, SHA256_DIGEST_LENGTH);
    }
    OPENSSL_cleanse(&ctx, sizeof ctx);
    OPENSSL_cleanse(digest, sizeof digest);
}

DUCKDB_EXTENSION_ENTRYPOINT(duckdb_connection connection, duckdb_extension_info info,
                            struct duckdb_extension_access *access) {
    duckdb_scalar_function function = duckdb_create_scalar_function();
    duckdb_scalar_function_set_name(function, "jkn_hmac_sha256");
    duckdb_logical_type varchar = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
    duckdb_logical_type blob = duckdb_create_logical_type(DUCKDB_TYPE_BLOB);
    duckdb_scalar_function_add_parameter(function, varchar);
    duckdb_scalar_function_add_parameter(function, blob);
    duckdb_scalar_function_add_parameter(function, blob);
    duckdb_scalar_function_set_return_type(function, blob);
    duckdb_destroy_logical_type(&varchar);
    duckdb_destroy_logical_type(&blob);
    /* special: a null pad reaches bind_key (and is refused) instead of making every result null */
    duckdb_scalar_function_set_special_handling(function);
    duckdb_scalar_function_set_bind(function, bind_key);
    duckdb_scalar_function_set_function(function, hmac_rows);
    duckdb_state registered = duckdb_register_scalar_function(connection, function);
    duckdb_destroy_scalar_function(&function);
    if (registered == DuckDBError) {
        access->set_error(info, "jkn_pseudonym: could not register jkn_hmac_sha256");
        return false;
    }
    if (jkn_register_rules(connection)) {
        access->set_error(info, "jkn_pseudonym: could not register the row rules (jkn_rules.c)");
        return false;
    }
    if (jkn_register_repeats(connection)) {
        access->set_error(info, "jkn_pseudonym: could not register jkn_repeated_hashes (jkn_repeats.c)");
        return false;
    }
    return true;
}
