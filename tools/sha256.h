/* sha256.h — SHA-256 (FIPS 180-4), for identifying model files in benchmark records. */
#ifndef MF_SHA256_H
#define MF_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* hex digest (64 chars + NUL) of n bytes */
void mf_sha256_hex(const void *data, size_t n, char out[65]);

/* SHA-256 of the first n bytes of a file (a GGUF header: metadata + tensor infos, which
 * identifies a model without hashing gigabytes of weights). 0, or -1 if unreadable. */
int drv_header_sha256(const char *path, uint64_t n, char out[65]);

#endif
