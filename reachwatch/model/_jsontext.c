/* The UTF-8 length of a JSON string's value, counted on its JSON text without decoding it.
 *
 * A web page in a measurement is a JSON string of up to megabytes, and most are only measured:
 * decoding one into a Python str and encoding that back to count its bytes cost 1.2 ms for a
 * 500 kB page, most of an ingest's time on such pages. Counting its escapes here costs a pass
 * over its bytes, sixty-four at a time. The text is assumed to be one that msgspec accepted
 * (escapes and surrogate pairs valid); what is not a JSON string is refused with ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static int hex4(const unsigned char *p, const unsigned char *end, unsigned int *out) {
    unsigned int value = 0;
    if (end - p < 4) {
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        value <<= 4;
        if (c >= '0' && c <= '9') {
            value |= (unsigned int)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            value |= (unsigned int)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            value |= (unsigned int)(c - 'A' + 10);
        } else {
            return 0;
        }
    }
    *out = value;
    return 1;
}

/* A 64-byte block's bytes equal to `c`, one bit each, and those that may follow a backslash
 * but 'u' (which takes four hex digits and counts apart). */
#if defined(__SSE2__)
static inline uint64_t bits_of(__m128i a, __m128i b, __m128i c, __m128i d) {
    return (uint64_t)(unsigned int)_mm_movemask_epi8(a) |
           (uint64_t)(unsigned int)_mm_movemask_epi8(b) << 16 |
           (uint64_t)(unsigned int)_mm_movemask_epi8(c) << 32 |
           (uint64_t)(unsigned int)_mm_movemask_epi8(d) << 48;
}

static inline uint64_t equal_to(const unsigned char *block, char c) {
    const __m128i v = _mm_set1_epi8(c);
    const __m128i *p = (const __m128i *)block;
    return bits_of(_mm_cmpeq_epi8(_mm_loadu_si128(p), v),
                   _mm_cmpeq_epi8(_mm_loadu_si128(p + 1), v),
                   _mm_cmpeq_epi8(_mm_loadu_si128(p + 2), v),
                   _mm_cmpeq_epi8(_mm_loadu_si128(p + 3), v));
}

static inline __m128i simple16(const __m128i *p) {
    __m128i x = _mm_loadu_si128(p);
    __m128i m = _mm_cmpeq_epi8(x, _mm_set1_epi8('"'));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('\\')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('/')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('b')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('f')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('n')));
    m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('r')));
    return _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8('t')));
}

static inline uint64_t simple_escapes(const unsigned char *block) {
    const __m128i *p = (const __m128i *)block;
    return bits_of(simple16(p), simple16(p + 1), simple16(p + 2), simple16(p + 3));
}
#else
static inline uint64_t equal_to(const unsigned char *block, char c) {
    uint64_t bits = 0;
    for (int i = 0; i < 64; i++) {
        bits |= (uint64_t)(block[i] == (unsigned char)c) << i;
    }
    return bits;
}

static inline uint64_t simple_escapes(const unsigned char *block) {
    uint64_t bits = 0;
    for (int i = 0; i < 64; i++) {
        bits |= (uint64_t)(block[i] && strchr("\"\\/bfnrt", block[i]) != NULL) << i;
    }
    return bits;
}
#endif

#define ODD_BITS 0xAAAAAAAAAAAAAAAAULL

/* The bytes that the escapes of a JSON string's inside (s, n bytes) save, against the UTF-8
 * of its value; -1 if an escape is not JSON's. Sixty-four bytes a step, without a branch per
 * escape: a web page escapes a byte in fifteen (quotes, tabs, newlines, backslashes), and
 * stopping at each cost more than the rest of the count. */
static Py_ssize_t saved_by_escapes(const unsigned char *s, Py_ssize_t n) {
    const unsigned char *end = s + n;
    const unsigned char *pair_low = NULL; /* the 'u' of a low surrogate counted with its high */
    unsigned char padded[64];
    uint64_t carry = 0; /* the block's first byte is escaped by the last of the block before */
    Py_ssize_t saved = 0;
    for (Py_ssize_t i = 0; i < n; i += 64) {
        const unsigned char *block = s + i;
        Py_ssize_t left = n - i;
        if (left < 64) {
            memset(padded, 0, sizeof padded);
            memcpy(padded, block, (size_t)left);
            block = padded;
        }
        uint64_t backslashes = equal_to(block, '\\');
        uint64_t escaped = carry;
        carry = 0;
        if (backslashes) {
            /* simdjson's scan: a backslash escapes the next byte, unless it is escaped itself;
             * in a run of backslashes, every other one escapes */
            uint64_t starts = backslashes & ~escaped;
            uint64_t codes = (((starts << 1) | ODD_BITS) - starts) ^ ODD_BITS;
            carry = (codes & backslashes) >> 63;
            escaped = codes ^ (backslashes | escaped);
        }
        if (!escaped) {
            continue;
        }
        if (left < 64 && escaped >> left) {
            return -1; /* the closing quote is escaped: no string */
        }
        saved += __builtin_popcountll(escaped); /* two bytes for one; \u escapes save more */
        uint64_t others = escaped & ~simple_escapes(block);
        while (others) {
            const unsigned char *u = s + i + __builtin_ctzll(others);
            others &= others - 1;
            unsigned int code, low;
            if (*u != 'u' || !hex4(u + 1, end, &code)) {
                return -1;
            }
            if (u == pair_low) {
                continue;
            }
            if (code < 0x80) {
                saved += 4; /* six bytes for one */
            } else if (code < 0x800) {
                saved += 3;
            } else if (code >= 0xD800 && code < 0xDC00 && end - u >= 11 && u[5] == '\\' &&
                       u[6] == 'u' && hex4(u + 7, end, &low) && low >= 0xDC00 && low < 0xE000) {
                saved += 6; /* a surrogate pair, twelve bytes for four: two counted above */
                pair_low = u + 6;
            } else {
                saved += 2; /* a lone surrogate counts as Python's surrogatepass encodes it */
            }
        }
    }
    return carry ? -1 : saved;
}

static PyObject *utf8_length(PyObject *module, PyObject *text) {
    Py_buffer view;
    if (PyObject_GetBuffer(text, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *p = view.buf;
    Py_ssize_t length = view.len, saved = -1;
    if (length >= 2 && p[0] == '"' && p[length - 1] == '"') {
        saved = saved_by_escapes(p + 1, length - 2);
    }
    PyBuffer_Release(&view);
    if (saved < 0) {
        PyErr_SetString(PyExc_ValueError, "not a JSON string");
        return NULL;
    }
    return PyLong_FromSsize_t(length - 2 - saved);
}

/* Where bytes stop being UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF), without decoding them: msgspec checks only the strings it decodes, and a
 * measurement's bytes must all be UTF-8 to be stored. Runs of ASCII, most of a measurement,
 * are passed sixteen bytes at a time. The offset is where Python's decoder says the first
 * invalid sequence starts, the place a quarantine reason gives. */
static Py_ssize_t first_invalid(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
#if defined(__SSE2__)
        while (n - i >= 16) {
            __m128i block = _mm_loadu_si128((const __m128i *)(s + i));
            unsigned int non_ascii = (unsigned int)_mm_movemask_epi8(block);
            if (non_ascii) {
                i += __builtin_ctz(non_ascii);
                break;
            }
            i += 16;
        }
        if (i >= n) {
            break;
        }
#endif
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        Py_ssize_t length;
        unsigned char low = 0x80, high = 0xBF; /* the range of the byte after the first */
        if (c >= 0xC2 && c <= 0xDF) {
            length = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            length = 3;
            if (c == 0xE0) {
                low = 0xA0; /* shorter forms are overlong */
            } else if (c == 0xED) {
                high = 0x9F; /* beyond: surrogates */
            }
        } else if (c >= 0xF0 && c <= 0xF4) {
            length = 4;
            if (c == 0xF0) {
                low = 0x90;
            } else if (c == 0xF4) {
                high = 0x8F; /* beyond: past U+10FFFF */
            }
        } else {
            return i;
        }
        if (n - i < length || s[i + 1] < low || s[i + 1] > high) {
            return i;
        }
        for (Py_ssize_t k = 2; k < length; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return i;
            }
        }
        i += length;
    }
    return -1;
}

static PyObject *invalid_utf8_at(PyObject *module, PyObject *data) {
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    /* the GIL is kept: a few microseconds, and handing it over costs another thread's turn */
    Py_ssize_t at = first_invalid(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(at);
}

static PyMethodDef methods[] = {
    {"utf8_length", utf8_length, METH_O,
     "utf8_length(text, /)\n--\n\nThe length in UTF-8 bytes of the value of a JSON string, "
     "given as its JSON text (quotes included)."},
    {"invalid_utf8_at", invalid_utf8_at, METH_O,
     "invalid_utf8_at(data, /)\n--\n\nWhere the first sequence of the bytes that is not "
     "UTF-8 starts, as Python's decoder says it; -1 if they are all UTF-8."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsontext",
    "Counting and checking JSON text without decoding it.", 0, methods,
};

PyMODINIT_FUNC PyInit__jsontext(void) { return PyModule_Create(&module); }
