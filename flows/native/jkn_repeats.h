/* jkn_repeats.c: the aggregate jkn_repeated_hashes (which key hashes of a part occur more than once). */
#ifndef JKN_REPEATS_H
#define JKN_REPEATS_H

/* Registers the aggregate on `connection`; NULL when done, else its name. */
const char *jkn_register_repeats(duckdb_connection connection);

#endif
