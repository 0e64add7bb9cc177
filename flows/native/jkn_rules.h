/* jkn_rules.c: ingest's row rules as DuckDB scalar functions (jkn_text, jkn_nik_valid). */
#ifndef JKN_RULES_H
#define JKN_RULES_H

/* Registers the functions on `connection`; NULL when done, else the name of the one that failed. */
const char *jkn_register_rules(duckdb_connection connection);

#endif
