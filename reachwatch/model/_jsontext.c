/* JSON text read without decoding it: a string's UTF-8 length, where a measurement's pages are,
 * whether its bytes are UTF-8.
 *
 * A web page in a measurement is a JSON string of up to megabytes, and most are only measured:
 * decoding one into a Python str and encoding that back to count its bytes cost 1.2 ms for a
 * 500 kB page, most of an ingest's time on such pages. Counting its escapes here costs a pass
 * over its bytes, sixty-four at a time. The text is assumed to be one that msgspec accepted
 * (escapes and surrogate pairs valid); what is not a JSON string is refused with ValueError.
 *
 * The pages are also cut out before msgspec decodes a measurement (`cut_bodies`): msgspec
 * passes over a string it skips a byte at a time, five to six instructions a byte, and pages
 * are most of a web measurement's bytes. Found sixty-four bytes at a time here, they are put
 * back, as views of the original bytes, where msgspec decoded the placeholders (`_parse`).
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

static inline __m128i control16(const __m128i *p) {
    __m128i x = _mm_loadu_si128(p);
    return _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1F)), x); /* x <= 0x1F */
}

/* The bytes below 0x20, which no JSON string holds unescaped. */
static inline uint64_t controls(const unsigned char *block) {
    const __m128i *p = (const __m128i *)block;
    return bits_of(control16(p), control16(p + 1), control16(p + 2), control16(p + 3));
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

static inline uint64_t controls(const unsigned char *block) {
    uint64_t bits = 0;
    for (int i = 0; i < 64; i++) {
        bits |= (uint64_t)(block[i] < 0x20) << i;
    }
    return bits;
}
#endif

#define ODD_BITS 0xAAAAAAAAAAAAAAAAULL

/* The bytes of a block that a backslash escapes. simdjson's scan: a backslash escapes the next
 * byte, unless it is escaped itself; in a run of backslashes, every other one escapes. `carry`
 * brings in whether the block's first byte is escaped by the last of the block before, and
 * takes out the same for the next block. */
static inline uint64_t escaped_bytes(uint64_t backslashes, uint64_t *carry) {
    uint64_t escaped = *carry;
    *carry = 0;
    if (backslashes) {
        uint64_t starts = backslashes & ~escaped;
        uint64_t codes = (((starts << 1) | ODD_BITS) - starts) ^ ODD_BITS;
        *carry = (codes & backslashes) >> 63;
        escaped = codes ^ (backslashes | escaped);
    }
    return escaped;
}


/* The block of `size` bytes at s, or, where fewer than `size` are left, those copied into
 * `padded` with zeros after them: a block may be read whole wherever it lies. */
static inline const unsigned char *block_at(const unsigned char *s, Py_ssize_t left,
                                            unsigned char *padded, size_t size) {
    if (left >= (Py_ssize_t)size) {
        return s;
    }
    memset(padded, 0, size);
    memcpy(padded, s, (size_t)left);
    return padded;
}

/* Whether the \u escape at u (its 'u') is followed by an escaped low surrogate, the second
 * half of a pair if u's is a high one. */
static inline int low_surrogate_follows(const unsigned char *u, const unsigned char *end) {
    unsigned int low;
    return end - u >= 11 && u[5] == '\\' && u[6] == 'u' && hex4(u + 7, end, &low) &&
           low >= 0xDC00 && low < 0xE000;
}

/* The bytes that the escapes of a JSON string's inside (s, n bytes) save, against the UTF-8
 * of its value; -1 if an escape is not JSON's. Sixty-four bytes a step, without a branch per
 * escape: a web page escapes a byte in fifteen (quotes, tabs, newlines, backslashes), and
 * stopping at each cost more than the rest of the count. */
static Py_ssize_t saved_by_escapes(const unsigned char *s, Py_ssize_t n) {
    const unsigned char *end = s + n;
    const unsigned char *pair_low = NULL; /* the 'u' of a low surrogate counted with its high */
    unsigned char padded[64];
    uint64_t carry = 0;
    Py_ssize_t saved = 0;
    for (Py_ssize_t i = 0; i < n; i += 64) {
        Py_ssize_t left = n - i;
        const unsigned char *block = block_at(s + i, left, padded, sizeof padded);
        uint64_t escaped = escaped_bytes(equal_to(block, '\\'), &carry);
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
            unsigned int code;
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
            } else if (code >= 0xD800 && code < 0xDC00 && low_surrogate_follows(u, end)) {
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

/* Whether the escape at u (the byte after a backslash, not a one-letter escape) is one msgspec
 * accepts: 'u' and four hex digits; a high surrogate only with an escaped low one after it, a
 * low one only after a high. `*pair_low` keeps the 'u' of a low surrogate already checked. */
static int valid_u_escape(const unsigned char *u, const unsigned char *end,
                          const unsigned char **pair_low) {
    unsigned int code;
    if (u == *pair_low) {
        return 1;
    }
    if (*u != 'u' || !hex4(u + 1, end, &code) || (code >= 0xDC00 && code < 0xE000)) {
        return 0;
    }
    if (code >= 0xD800 && code < 0xDC00) {
        if (!low_surrogate_follows(u, end)) {
            return 0;
        }
        *pair_low = u + 6;
    }
    return 1;
}

/* Where the JSON string whose inside starts at s ends: the index from s of its closing quote,
 * or -1 if none comes before `end`. `*valid` says whether msgspec accepts the inside, as it
 * checks a string it skips: no byte below 0x20, escapes JSON's, surrogates paired. */
static Py_ssize_t string_end(const unsigned char *s, const unsigned char *end, int *valid) {
    const Py_ssize_t n = end - s;
    const unsigned char *pair_low = NULL;
    unsigned char padded[64];
    uint64_t carry = 0;
    *valid = 1;
    for (Py_ssize_t i = 0; i < n; i += 64) {
        const unsigned char *block = block_at(s + i, n - i, padded, sizeof padded);
        uint64_t in_block = n - i < 64 ? (1ULL << (n - i)) - 1 : ~0ULL;
        uint64_t escaped = escaped_bytes(equal_to(block, '\\'), &carry);
        uint64_t quotes = equal_to(block, '"') & ~escaped & in_block;
        uint64_t inside = quotes ? (quotes & (0 - quotes)) - 1 : in_block;
        if (controls(block) & inside) {
            *valid = 0;
        }
        uint64_t others = escaped & inside & ~simple_escapes(block);
        while (*valid && others) {
            const unsigned char *u = s + i + __builtin_ctzll(others);
            others &= others - 1;
            *valid = valid_u_escape(u, end, &pair_low);
        }
        if (quotes) {
            return i + __builtin_ctzll(quotes);
        }
    }
    return -1;
}

static Py_ssize_t skip_space(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) {
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
        i++;
    }
    return i;
}

/* The next `"body"` at or after `from` whose first quote no backslash escapes; -1 if none.
 * In JSON every quote inside a string is escaped, so that quote opens a string: the word
 * itself, a key if a colon follows. (In text that is not JSON it may be something else; the
 * caller decodes the original bytes whenever the cut ones fail.) */
static Py_ssize_t next_body_key(const unsigned char *p, Py_ssize_t n, Py_ssize_t from) {
    unsigned char padded[128];
    for (Py_ssize_t i = from; n - i >= 6; i += 64) {
        /* 65 bytes read: each quote's next byte too */
        const unsigned char *block = n - i < 65 ? block_at(p + i, n - i, padded, sizeof padded)
                                                : p + i;
        uint64_t found = equal_to(block, '"') & equal_to(block + 1, 'b');
        while (found) {
            Py_ssize_t q = i + __builtin_ctzll(found);
            found &= found - 1;
            if (n - q < 6 || memcmp(p + q, "\"body\"", 6) != 0) {
                continue;
            }
            Py_ssize_t run = 0; /* the backslashes right before the quote */
            while (run < q && p[q - 1 - run] == '\\') {
                run++;
            }
            if (run % 2 == 0) {
                return q;
            }
        }
    }
    return -1;
}

typedef struct {
    Py_ssize_t start, stop; /* a cut string, quotes included */
} Span;

/* cut_bodies(data, min_size): the measurement with every string value of a "body" key of at
 * least min_size bytes (quotes included) replaced by "", and where each went: {offset of its
 * "" in the cut bytes: (start, stop) of the string in data}. None if nothing is cut. A string
 * msgspec would refuse is left in place, for msgspec to say why. */
static PyObject *cut_bodies(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "cut_bodies(data, min_size) takes two arguments");
        return NULL;
    }
    Py_ssize_t min_size = PyLong_AsSsize_t(args[1]);
    if (min_size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *p = view.buf;
    const Py_ssize_t n = view.len;
    Span *spans = NULL;
    Py_ssize_t count = 0, capacity = 0, removed = 0, at = 0;
    PyObject *result = NULL, *cut = NULL, *where = NULL;
    while ((at = next_body_key(p, n, at)) >= 0) {
        Py_ssize_t start = skip_space(p, at + 6, n);
        if (start >= n || p[start] != ':') {
            at += 6;
            continue;
        }
        start = skip_space(p, start + 1, n);
        if (start >= n || p[start] != '"') {
            at = start; /* an object, null, or something msgspec will refuse */
            continue;
        }
        int valid;
        Py_ssize_t end = string_end(p + start + 1, p + n, &valid);
        if (end < 0) {
            break;
        }
        Py_ssize_t stop = start + end + 2;
        if (valid && stop - start >= min_size) {
            if (count == capacity) {
                capacity = capacity ? 2 * capacity : 8;
                Span *grown = PyMem_Realloc(spans, (size_t)capacity * sizeof(Span));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                spans = grown;
            }
            spans[count].start = start;
            spans[count].stop = stop;
            count++;
            removed += stop - start - 2;
        }
        at = stop;
    }
    if (count == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    cut = PyBytes_FromStringAndSize(NULL, n - removed);
    where = PyDict_New();
    if (cut == NULL || where == NULL) {
        goto done;
    }
    char *base = PyBytes_AS_STRING(cut), *w = base;
    Py_ssize_t from = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        memcpy(w, p + from, (size_t)(spans[k].start - from));
        w += spans[k].start - from;
        PyObject *key = PyLong_FromSsize_t(w - base);
        PyObject *span = Py_BuildValue("(nn)", spans[k].start, spans[k].stop);
        int failed = key == NULL || span == NULL || PyDict_SetItem(where, key, span) < 0;
        Py_XDECREF(key);
        Py_XDECREF(span);
        if (failed) {
            goto done;
        }
        *w++ = '"';
        *w++ = '"';
        from = spans[k].stop;
    }
    memcpy(w, p + from, (size_t)(n - from));
    result = PyTuple_Pack(2, cut, where);
done:
    Py_XDECREF(cut);
    Py_XDECREF(where);
    PyMem_Free(spans);
    PyBuffer_Release(&view);
    return result;
}

/* offset_in(part, whole): where part's bytes start within whole's, or -1 if they are not in
 * them: tells a value msgspec decoded (a Raw, a view into the bytes it decoded) by its place. */
static PyObject *offset_in(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "offset_in(part, whole) takes two arguments");
        return NULL;
    }
    Py_buffer part, whole;
    if (PyObject_GetBuffer(args[0], &part, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(args[1], &whole, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&part);
        return NULL;
    }
    const char *a = part.buf, *b = whole.buf;
    Py_ssize_t at = (a >= b && a + part.len <= b + whole.len) ? a - b : -1;
    PyBuffer_Release(&part);
    PyBuffer_Release(&whole);
    return PyLong_FromSsize_t(at);
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
    {"cut_bodies", (PyCFunction)(void (*)(void))cut_bodies, METH_FASTCALL,
     "cut_bodies(data, min_size, /)\n--\n\nThe bytes with each long string value of a "
     "\"body\" key replaced by \"\", and {offset of that \"\": (start, stop) of the string in "
     "data}; None if there is none to cut."},
    {"offset_in", (PyCFunction)(void (*)(void))offset_in, METH_FASTCALL,
     "offset_in(part, whole, /)\n--\n\nWhere part's bytes start within whole's; -1 if "
     "they are not in them."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsontext",
    "Counting and checking JSON text without decoding it.", 0, methods,
};

PyMODINIT_FUNC PyInit__jsontext(void) { return PyModule_Create(&module); }
