/* Which 64-bit key hashes occur more than once, as a DuckDB aggregate, registered by the same extension as
 * jkn_hmac_sha256 (jkn_pseudonym.c calls jkn_register_repeats). Ingest asks it of every participants part
 * (flows/ingest/repeats.py): tens of millions of card numbers and persons, where fetching the hashes into numpy
 * and sorting them there cost about 0.25 s per million rows (BENCHMARKS.md, "Ingest, repeated keys").
 *
 * jkn_repeated_hashes(hash UBIGINT) -> UBIGINT[]
 *   The distinct non-null values that occur at least twice, each once, in no particular order; [] when none does.
 *   Memory: 8 bytes a value while the rows are read (blocks, no reallocation), then an array of 8 bytes a value
 *   into which the blocks are moved and freed one by one. Values are bucketed by their top byte into that
 *   array (the hashes DuckDB makes are spread evenly), and each bucket, a few hundred kilobytes, is looked up
 *   in a hash set sized for the largest bucket (16 bytes a slot, at least two slots a value), in the CPU's
 *   cache; a bucket's set is emptied slot by slot when it is small beside the set.
 *   The combine moves the source's blocks into the target (DuckDB combines a thread's state into the global
 *   one once and does not read the source again); a window frame (which re-reads combined states) is not
 *   a use ingest has.
 */
#define DUCKDB_EXTENSION_API_VERSION_MAJOR 1
#define DUCKDB_EXTENSION_API_VERSION_MINOR 5
#define DUCKDB_EXTENSION_API_VERSION_PATCH 6
#include "duckdb_extension.h"
DUCKDB_EXTENSION_EXTERN

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "jkn_repeats.h"

/* A block's values grow from FIRST_BLOCK to LAST_BLOCK (8 MB): few blocks for a national part, little
 * memory for a small one. */
#define FIRST_BLOCK ((idx_t)1 << 10)
#define LAST_BLOCK ((idx_t)1 << 20)

/* Memory of its own mapping, given back to the system when freed (a freed malloc block of this size can stay
 * in the process while the next state is sorted: three copies of a national key column at once, not two). */
static void *map(idx_t bytes) {
    void *memory = mmap(NULL, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return memory == MAP_FAILED ? NULL : memory;
}

static void unmap(void *memory, idx_t bytes) {
    if (memory) munmap(memory, bytes ? bytes : 1);
}

typedef struct block {
    struct block *next;
    idx_t count, capacity;
    uint64_t values[];
} block;

typedef struct {
    block *head; /* the block being filled; full ones after it */
    idx_t total;
} hashes_state;

static idx_t state_size(duckdb_function_info info) {
    (void)info;
    return sizeof(hashes_state);
}

static void state_init(duckdb_function_info info, duckdb_aggregate_state state) {
    (void)info;
    memset(state, 0, sizeof(hashes_state));
}

static idx_t block_bytes(idx_t capacity) { return sizeof(block) + capacity * sizeof(uint64_t); }

/* The large blocks (a national part's) are mappings of their own; the small ones (a small part's, or one
 * state per group of a GROUP BY) come from malloc, so that many groups do not need many mappings. */
static block *new_block(idx_t capacity) {
    return capacity == LAST_BLOCK ? map(block_bytes(capacity)) : malloc(block_bytes(capacity));
}

static void free_block(block *b) {
    if (b->capacity == LAST_BLOCK)
        unmap(b, block_bytes(b->capacity));
    else
        free(b);
}

static void free_blocks(hashes_state *state) {
    for (block *b = state->head, *next; b; b = next) {
        next = b->next;
        free_block(b);
    }
    state->head = NULL;
    state->total = 0;
}

static void state_destroy(duckdb_aggregate_state *states, idx_t count) {
    for (idx_t i = 0; i < count; i++) free_blocks((hashes_state *)states[i]);
}

/* Room for one more value in `state`: false when memory runs out. */
static int make_room(hashes_state *state) {
    if (state->head && state->head->count < state->head->capacity) return 1;
    idx_t capacity = state->head ? state->head->capacity * 2 : FIRST_BLOCK;
    if (capacity > LAST_BLOCK) capacity = LAST_BLOCK;
    block *b = new_block(capacity);
    if (!b) return 0;
    b->next = state->head;
    b->count = 0;
    b->capacity = capacity;
    state->head = b;
    return 1;
}

static void update(duckdb_function_info info, duckdb_data_chunk input, duckdb_aggregate_state *states) {
    const idx_t count = duckdb_data_chunk_get_size(input);
    duckdb_vector hashes = duckdb_data_chunk_get_vector(input, 0); /* flat: DuckDB flattens the input */
    const uint64_t *values = duckdb_vector_get_data(hashes);
    uint64_t *validity = duckdb_vector_get_validity(hashes);
    for (idx_t row = 0; row < count; row++) {
        if (validity && !duckdb_validity_row_is_valid(validity, row)) continue;
        hashes_state *state = (hashes_state *)states[row];
        if (!make_room(state)) {
            duckdb_aggregate_function_set_error(info, "jkn_repeated_hashes: out of memory");
            return;
        }
        state->head->values[state->head->count++] = values[row];
        state->total++;
    }
}

static void combine(duckdb_function_info info, duckdb_aggregate_state *source, duckdb_aggregate_state *target,
                    idx_t count) {
    (void)info;
    for (idx_t i = 0; i < count; i++) {
        hashes_state *from = (hashes_state *)source[i], *to = (hashes_state *)target[i];
        if (!from->head) continue;
        block *last = from->head;
        while (last->next) last = last->next;
        /* the source's blocks go first: its partly filled head becomes the one the target fills next */
        last->next = to->head;
        to->head = from->head;
        to->total += from->total;
        from->head = NULL;
        from->total = 0;
    }
}

typedef struct {
    uint64_t *values;
    idx_t count, capacity;
} found;

static int add_found(found *repeated, uint64_t value) {
    if (repeated->count == repeated->capacity) {
        const idx_t capacity = repeated->capacity ? repeated->capacity * 2 : 64;
        uint64_t *grown = realloc(repeated->values, capacity * sizeof(uint64_t));
        if (!grown) return 0;
        repeated->values = grown;
        repeated->capacity = capacity;
    }
    repeated->values[repeated->count++] = value;
    return 1;
}

/* A slot of the hash set one bucket is looked up in: the value (0: empty; a 0 value is counted apart) and
 * whether it was found repeated already. */
typedef struct {
    uint64_t value;
    uint64_t reported;
} slot;

/* Where `value` starts its search in a set of 2^bits slots: its bits mixed (splitmix64's finalizer), so that
 * values alike in their low bits (they all share their top byte in a bucket) still spread. */
static idx_t home_of(uint64_t value, int bits) {
    value ^= value >> 31;
    value *= 0xBF58476D1CE4E5B9ULL;
    value ^= value >> 29;
    return (idx_t)(value >> (64 - bits));
}

/* Adds to `repeated` each value of values[0..n) that occurs again there, once; `set` has 2^bits slots, all
 * empty, and at least 2n of them; it is left empty. False when memory runs out. */
static int bucket_repeats(const uint64_t *values, idx_t n, slot *set, int bits, found *repeated) {
    const idx_t mask = ((idx_t)1 << bits) - 1;
    idx_t zeros = 0;
    int ok = 1;
    for (idx_t i = 0; i < n && ok; i++) {
        const uint64_t value = values[i];
        if (value == 0) {
            if (++zeros == 2) ok = add_found(repeated, 0);
            continue;
        }
        for (idx_t at = home_of(value, bits);; at = (at + 1) & mask) {
            if (set[at].value == 0) {
                set[at].value = value;
                break;
            }
            if (set[at].value == value) {
                if (!set[at].reported) {
                    set[at].reported = 1;
                    ok = add_found(repeated, value);
                }
                break;
            }
        }
    }
    /* emptied slot by slot where the bucket is small beside the set, else in one go */
    if (n * 8 < mask) {
        for (idx_t i = 0; i < n; i++) {
            if (values[i] == 0) continue;
            for (idx_t at = home_of(values[i], bits); set[at].value; at = (at + 1) & mask) set[at] = (slot){0, 0};
        }
    } else {
        memset(set, 0, (mask + 1) * sizeof(slot));
    }
    return ok;
}

/* The repeated values of `state` (its blocks are freed); NULL, or the error when memory runs out. */
static const char *repeated_values(hashes_state *state, found *repeated) {
    const idx_t n = state->total;
    if (n < 2) {
        free_blocks(state);
        return NULL;
    }
    idx_t starts[257] = {0};
    for (block *b = state->head; b; b = b->next)
        for (idx_t i = 0; i < b->count; i++) starts[(b->values[i] >> 56) + 1]++;
    idx_t largest = 0;
    for (int bucket = 0; bucket < 256; bucket++) {
        if (starts[bucket + 1] > largest) largest = starts[bucket + 1];
        starts[bucket + 1] += starts[bucket];
    }
    uint64_t *values = map(n * sizeof(uint64_t));
    if (!values) return "jkn_repeated_hashes: out of memory";
    idx_t next[256];
    memcpy(next, starts, sizeof(next));
    for (block *b = state->head, *following; b; b = following) { /* each block freed once moved */
        for (idx_t i = 0; i < b->count; i++) values[next[b->values[i] >> 56]++] = b->values[i];
        following = b->next;
        free_block(b);
    }
    state->head = NULL;
    state->total = 0;
    int bits = 4;
    while (((idx_t)1 << bits) < 2 * largest) bits++;
    const idx_t set_bytes = ((idx_t)1 << bits) * sizeof(slot);
    slot *set = map(set_bytes); /* zeroed */
    const char *error = set ? NULL : "jkn_repeated_hashes: out of memory";
    for (int bucket = 0; bucket < 256 && !error; bucket++) {
        const idx_t size = starts[bucket + 1] - starts[bucket];
        if (size >= 2 && !bucket_repeats(values + starts[bucket], size, set, bits, repeated))
            error = "jkn_repeated_hashes: out of memory";
    }
    unmap(set, set_bytes);
    unmap(values, n * sizeof(uint64_t));
    return error;
}

static void finalize(duckdb_function_info info, duckdb_aggregate_state *source, duckdb_vector result, idx_t count,
                     idx_t offset) {
    duckdb_list_entry *entries = duckdb_vector_get_data(result);
    for (idx_t i = 0; i < count; i++) {
        found repeated = {NULL, 0, 0};
        const char *error = repeated_values((hashes_state *)source[i], &repeated);
        const idx_t size = duckdb_list_vector_get_size(result);
        if (!error && (duckdb_list_vector_reserve(result, size + repeated.count) == DuckDBError ||
                       duckdb_list_vector_set_size(result, size + repeated.count) == DuckDBError))
            error = "jkn_repeated_hashes: could not grow the result";
        if (error) {
            free(repeated.values);
            duckdb_aggregate_function_set_error(info, error);
            return;
        }
        uint64_t *child = duckdb_vector_get_data(duckdb_list_vector_get_child(result));
        if (repeated.count) memcpy(child + size, repeated.values, repeated.count * sizeof(uint64_t));
        entries[offset + i].offset = size;
        entries[offset + i].length = repeated.count;
        free(repeated.values);
    }
}

const char *jkn_register_repeats(duckdb_connection connection) {
    duckdb_aggregate_function function = duckdb_create_aggregate_function();
    duckdb_aggregate_function_set_name(function, "jkn_repeated_hashes");
    duckdb_logical_type hash = duckdb_create_logical_type(DUCKDB_TYPE_UBIGINT);
    duckdb_logical_type hashes = duckdb_create_list_type(hash);
    duckdb_aggregate_function_add_parameter(function, hash);
    duckdb_aggregate_function_set_return_type(function, hashes);
    duckdb_destroy_logical_type(&hash);
    duckdb_destroy_logical_type(&hashes);
    duckdb_aggregate_function_set_functions(function, state_size, state_init, update, combine, finalize);
    duckdb_aggregate_function_set_destructor(function, state_destroy);
    const duckdb_state registered = duckdb_register_aggregate_function(connection, function);
    duckdb_destroy_aggregate_function(&function);
    return registered == DuckDBError ? "jkn_repeated_hashes" : NULL;
}
