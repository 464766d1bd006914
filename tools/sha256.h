/* sha256.h — SHA-256 (FIPS 180-4), for identifying model files in benchmark records. */
#ifndef MF_SHA256_H
#define MF_SHA256_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

/* hex digest (64 chars + NUL) of n bytes */
void mf_sha256_hex(const void *data, size_t n, char out[65]);

/* SHA-256 of an open GGUF file's header (metadata + tensor infos: the bytes before the
 * data section), which identifies a model without hashing gigabytes of weights. Read from
 * the mapping, not by opening the path again (which may name another file by now). */
void drv_header_sha256(const mf_gguf *g, char out[65]);

#endif
