/* HMAC-SHA256 of many short values at once, for pseudonymising NIKs at ingest.
 *
 * flows/ingest/pseudonym.py computes person_key = HMAC-SHA256(JKN_PSEUDONYM_KEY, NIK) for every row of a
 * participants file. DuckDB can do it in SQL (two sha256() calls a row, ~2.5 us of CPU a row on this
 * project's 2-core machine); this module does the same with OpenSSL's SHA-256 (which uses the
 * CPU's SHA instructions where present) on a whole Arrow string array per call, with the GIL
 * released, so DuckDB's threads hash in parallel. Results are identical (tests compare both with
 * Python's hmac). Ingest uses it only where the DuckDB extension flows/native/jkn_pseudonym.c (the same
 * hashing inside DuckDB, without the Arrow UDF's round trip through Python) was not built or does not load;
 * when neither is there, ingest uses the SQL.
 *
 * digests(ipad, opad, offsets, data, offset_width, first, count) -> bytes: 32 bytes a value
 *   (what ingest stores); hex_digests(...) the same as 64 hex characters a value
 *   ipad, opad   the key XOR 0x36 / 0x5c, 64 bytes each (RFC 2104; flows.ingest.pseudonym.hmac_pads)
 *   offsets      the array's value offsets buffer (int32 or int64, offset_width 4 or 8 bytes)
 *   data         the array's data buffer
 *   first, count the array's slice: values first .. first + count - 1
 * returns count * 64 lowercase hex digits, value i at [64 i, 64 i + 64); null slots (the caller
 * knows them from the validity buffer) get the digest of whatever bytes their offsets span.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

static const char HEX[] = "0123456789abcdef";

static PyObject *compute(PyObject *args, int as_hex) {
    Py_buffer ipad, opad, offsets, data;
    int offset_width;
    Py_ssize_t first, count;
    if (!PyArg_ParseTuple(args, "y*y*y*y*inn", &ipad, &opad, &offsets, &data, &offset_width, &first, &count))
        return NULL;
    PyObject *result = NULL;
    if (ipad.len != 64 || opad.len != 64) {
        PyErr_SetString(PyExc_ValueError, "ipad and opad must be 64 bytes");
        goto done;
    }
    if ((offset_width != 4 && offset_width != 8) || first < 0 || count < 0 ||
        offsets.len < (first + count + 1) * (Py_ssize_t)offset_width) {
        PyErr_SetString(PyExc_ValueError, "offsets do not cover the slice");
        goto done;
    }
    const Py_ssize_t width = as_hex ? 64 : SHA256_DIGEST_LENGTH;
    result = PyBytes_FromStringAndSize(NULL, count * width);
    if (result == NULL) goto done;
    char *out = PyBytes_AS_STRING(result);
    const unsigned char *bytes = (const unsigned char *)data.buf;
    const char *offset_bytes = (const char *)offsets.buf;
    Py_ssize_t data_len = data.len;
    int bad_offsets = 0;

    Py_BEGIN_ALLOW_THREADS
    SHA256_CTX inner0, outer0, ctx;
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256_Init(&inner0);
    SHA256_Update(&inner0, ipad.buf, 64);
    SHA256_Init(&outer0);
    SHA256_Update(&outer0, opad.buf, 64);
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t start, end;
        if (offset_width == 4) {
            int32_t pair[2];
            memcpy(pair, offset_bytes + (first + i) * 4, 8);
            start = pair[0];
            end = pair[1];
        } else {
            int64_t pair[2];
            memcpy(pair, offset_bytes + (first + i) * 8, 16);
            start = pair[0];
            end = pair[1];
        }
        if (start < 0 || end < start || end > data_len) {
            bad_offsets = 1;
            break;
        }
        ctx = inner0;
        SHA256_Update(&ctx, bytes + start, (size_t)(end - start));
        SHA256_Final(digest, &ctx);
        ctx = outer0;
        SHA256_Update(&ctx, digest, SHA256_DIGEST_LENGTH);
        SHA256_Final(digest, &ctx);
        if (as_hex) {
            char *hex = out + i * 64;
            for (int j = 0; j < SHA256_DIGEST_LENGTH; j++) {
                hex[2 * j] = HEX[digest[j] >> 4];
                hex[2 * j + 1] = HEX[digest[j] & 15];
            }
        } else {
            memcpy(out + i * SHA256_DIGEST_LENGTH, digest, SHA256_DIGEST_LENGTH);
        }
    }
    OPENSSL_cleanse(&inner0, sizeof inner0);
    OPENSSL_cleanse(&outer0, sizeof outer0);
    OPENSSL_cleanse(&ctx, sizeof ctx);
    Py_END_ALLOW_THREADS

    if (bad_offsets) {
        Py_CLEAR(result);
        PyErr_SetString(PyExc_ValueError, "an offset lies outside the data buffer");
    }
done:
    PyBuffer_Release(&ipad);
    PyBuffer_Release(&opad);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&data);
    return result;
}

static PyObject *hex_digests(PyObject *self, PyObject *args) { return compute(args, 1); }

static PyObject *digests(PyObject *self, PyObject *args) { return compute(args, 0); }

static PyMethodDef METHODS[] = {
    {"hex_digests", hex_digests, METH_VARARGS, "HMAC-SHA256 hex digests of a slice of an Arrow string array."},
    {"digests", digests, METH_VARARGS, "HMAC-SHA256 digests (32 bytes each) of a slice of an Arrow string array."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_pseudonym", NULL, -1, METHODS};

PyMODINIT_FUNC PyInit__pseudonym(void) { return PyModule_Create(&MODULE); }
