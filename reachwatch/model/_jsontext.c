/* JSON text read without decoding it: a string's UTF-8 length, whether a measurement's bytes
 * are UTF-8, and where its long strings are.
 *
 * A web page in a measurement is a JSON string of up to megabytes, and most are only measured:
 * decoding one into a Python str and encoding that back to count its bytes cost 1.2 ms for a
 * 500 kB page, most of an ingest's time on such pages. Counting its escapes here costs a pass
 * over its bytes, sixty-four at a time. The text is assumed to be one that msgspec accepted
 * (escapes and surrogate pairs valid); what is not a JSON string is refused with ValueError.
 *
 * Long strings (pages, certificates, what a probe received) are also cut out before msgspec
 * decodes a measurement (`cut_strings`), in the pass that checks the bytes are UTF-8: msgspec
 * passes over a string it skips a byte at a time, five to six instructions a byte, and such
 * strings are most of a web measurement's bytes. Pages are put back, as views of the original
 * bytes, where msgspec decoded their placeholders (`_parse`).
 */
#ifndef PASS /* the module; the passes, below, are this file included again */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The bytes that may follow a backslash in JSON, but 'u' (which takes four hex digits) */
static const char SIMPLE_ESCAPES[8] = {'"', '\\', '/', 'b', 'f', 'n', 'r', 't'};

/* What a cut string is replaced by: a JSON string whose one byte is no UTF-8 */
#define PLACEHOLDER "\"\xff\""
#define PLACEHOLDER_SIZE 3

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

static inline uint64_t equal_to_base(const unsigned char *block, char c) {
    const __m128i v = _mm_set1_epi8(c);
    const __m128i *p = (const __m128i *)block;
    return bits_of(_mm_cmpeq_epi8(_mm_loadu_si128(p), v),
                   _mm_cmpeq_epi8(_mm_loadu_si128(p + 1), v),
                   _mm_cmpeq_epi8(_mm_loadu_si128(p + 2), v),
                   _mm_cmpeq_epi8(_mm_loadu_si128(p + 3), v));
}

static inline __m128i simple16(const __m128i *p) {
    __m128i x = _mm_loadu_si128(p), m = _mm_setzero_si128();
#pragma GCC unroll 8 /* the constants then fold into the code, as if written out */
    for (int k = 0; k < 8; k++) {
        m = _mm_or_si128(m, _mm_cmpeq_epi8(x, _mm_set1_epi8(SIMPLE_ESCAPES[k])));
    }
    return m;
}

static inline uint64_t simple_escapes_base(const unsigned char *block) {
    const __m128i *p = (const __m128i *)block;
    return bits_of(simple16(p), simple16(p + 1), simple16(p + 2), simple16(p + 3));
}

static inline __m128i control16(const __m128i *p) {
    __m128i x = _mm_loadu_si128(p);
    return _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1F)), x); /* x <= 0x1F */
}

/* The bytes of four vectors whose top bit is set; 0 at once if none is, as most often. */
static inline uint64_t rare_bits(__m128i a, __m128i b, __m128i c, __m128i d) {
    if (!_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(a, b), _mm_or_si128(c, d)))) {
        return 0;
    }
    return bits_of(a, b, c, d);
}

/* The bytes below 0x20, which no JSON string holds unescaped. */
static inline uint64_t controls_base(const unsigned char *block) {
    const __m128i *p = (const __m128i *)block;
    return rare_bits(control16(p), control16(p + 1), control16(p + 2), control16(p + 3));
}

/* The bytes from 0x80 up: those of UTF-8 sequences longer than one byte. */
static inline uint64_t high_bits_base(const unsigned char *block) {
    const __m128i *p = (const __m128i *)block;
    return rare_bits(_mm_loadu_si128(p), _mm_loadu_si128(p + 1), _mm_loadu_si128(p + 2),
                     _mm_loadu_si128(p + 3));
}
#else
static inline uint64_t equal_to_base(const unsigned char *block, char c) {
    uint64_t bits = 0;
    for (int i = 0; i < 64; i++) {
        bits |= (uint64_t)(block[i] == (unsigned char)c) << i;
    }
    return bits;
}

static inline uint64_t simple_escapes_base(const unsigned char *block) {
    uint64_t bits = 0;
    for (int i = 0; i < 64; i++) {
        bits |= (uint64_t)(memchr(SIMPLE_ESCAPES, block[i], sizeof SIMPLE_ESCAPES) != NULL) << i;
    }
    return bits;
}

static inline uint64_t controls_base(const unsigned char *block) {
    uint64_t bits = 0;
    for (int i = 0; i < 64; i++) {
        bits |= (uint64_t)(block[i] < 0x20) << i;
    }
    return bits;
}

static inline uint64_t high_bits_base(const unsigned char *block) {
    uint64_t bits = 0;
    for (int i = 0; i < 64; i++) {
        bits |= (uint64_t)(block[i] >= 0x80) << i;
    }
    return bits;
}
#endif


/* The same with AVX2, where the processor has it (`cut_strings` chooses when the module loads):
 * thirty-two bytes a vector, half the instructions a block. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_AVX2 1
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))

AVX2 static inline uint64_t bits_of_avx2(__m256i low, __m256i high) {
    return (uint64_t)(unsigned int)_mm256_movemask_epi8(low) |
           (uint64_t)(unsigned int)_mm256_movemask_epi8(high) << 32;
}

AVX2 static inline uint64_t equal_to_avx2(const unsigned char *block, char c) {
    const __m256i v = _mm256_set1_epi8(c);
    const __m256i *p = (const __m256i *)block;
    return bits_of_avx2(_mm256_cmpeq_epi8(_mm256_loadu_si256(p), v),
                        _mm256_cmpeq_epi8(_mm256_loadu_si256(p + 1), v));
}

AVX2 static inline __m256i simple32(const __m256i *p) {
    __m256i x = _mm256_loadu_si256(p), m = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++) {
        m = _mm256_or_si256(m, _mm256_cmpeq_epi8(x, _mm256_set1_epi8(SIMPLE_ESCAPES[k])));
    }
    return m;
}

AVX2 static inline uint64_t simple_escapes_avx2(const unsigned char *block) {
    const __m256i *p = (const __m256i *)block;
    return bits_of_avx2(simple32(p), simple32(p + 1));
}

AVX2 static inline __m256i control32(const __m256i *p) {
    __m256i x = _mm256_loadu_si256(p);
    return _mm256_cmpeq_epi8(_mm256_min_epu8(x, _mm256_set1_epi8(0x1F)), x);
}

AVX2 static inline uint64_t rare_bits_avx2(__m256i low, __m256i high) {
    if (!_mm256_movemask_epi8(_mm256_or_si256(low, high))) {
        return 0;
    }
    return bits_of_avx2(low, high);
}

AVX2 static inline uint64_t controls_avx2(const unsigned char *block) {
    const __m256i *p = (const __m256i *)block;
    return rare_bits_avx2(control32(p), control32(p + 1));
}

AVX2 static inline uint64_t high_bits_avx2(const unsigned char *block) {
    const __m256i *p = (const __m256i *)block;
    return rare_bits_avx2(_mm256_loadu_si256(p), _mm256_loadu_si256(p + 1));
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

/* The length of the UTF-8 sequence at s[i] (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF), or 0 if none starts there, as Python's decoder sees it. */
static Py_ssize_t sequence_length(const unsigned char *s, Py_ssize_t n, Py_ssize_t i) {
    unsigned char c = s[i];
    Py_ssize_t length;
    unsigned char low = 0x80, high = 0xBF; /* the range of the byte after the first */
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
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
        return 0;
    }
    if (n - i < length || s[i + 1] < low || s[i + 1] > high) {
        return 0;
    }
    for (Py_ssize_t k = 2; k < length; k++) {
        if ((s[i + k] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return length;
}

/* The UTF-8 check of the block at s + i, whose bytes from 0x80 up are `high`: each sequence
 * is checked from its first byte, so the cost is the non-ASCII bytes', not the block's.
 * `*follow` brings in the bytes that continue a sequence begun in the block before (checked
 * with it) and takes out the same for the next. Returns where the first sequence that is not
 * UTF-8 starts, or -1. */
static Py_ssize_t utf8_in_block(const unsigned char *s, Py_ssize_t n, Py_ssize_t i,
                                uint64_t high, uint64_t *follow) {
    high &= ~*follow;
    *follow = 0;
    while (high) {
        Py_ssize_t at = i + __builtin_ctzll(high);
        Py_ssize_t length = sequence_length(s, n, at);
        if (length == 0) {
            return at;
        }
        Py_ssize_t stop = at + length - i; /* from the block's start */
        if (stop >= 64) {
            *follow = stop > 64 ? (1ULL << (stop - 64)) - 1 : 0;
            break;
        }
        high &= ~((1ULL << stop) - 1);
    }
    return -1;
}

/* XOR of each bit with all below it: over a block's unescaped quotes, the bytes inside strings
 * (an opening quote counted in, a closing one out). */
static inline uint64_t prefix_xor(uint64_t bits) {
    bits ^= bits << 1;
    bits ^= bits << 2;
    bits ^= bits << 4;
    bits ^= bits << 8;
    bits ^= bits << 16;
    bits ^= bits << 32;
    return bits;
}

static Py_ssize_t skip_space(const unsigned char *p, Py_ssize_t i, Py_ssize_t n) {
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
        i++;
    }
    return i;
}

typedef struct {
    Py_ssize_t start, stop; /* a string to cut, quotes included */
} Span;

typedef struct {
    Span *spans;
    Py_ssize_t count, capacity, removed;
} Cuts;

static int add_cut(Cuts *cuts, Py_ssize_t start, Py_ssize_t stop) {
    if (cuts->count == cuts->capacity) {
        Py_ssize_t capacity = cuts->capacity ? 2 * cuts->capacity : 8;
        Span *grown = PyMem_Realloc(cuts->spans, (size_t)capacity * sizeof(Span));
        if (grown == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        cuts->spans = grown;
        cuts->capacity = capacity;
    }
    cuts->spans[cuts->count].start = start;
    cuts->spans[cuts->count].stop = stop;
    cuts->count++;
    cuts->removed += stop - start - PLACEHOLDER_SIZE;
    return 0;
}

#define PASS(name) name##_base
#define TARGET
#include "_jsontext.c" /* the passes, with the primitives above (at the end of this file) */
#undef PASS
#undef TARGET
#ifdef HAVE_AVX2
#define PASS(name) name##_avx2
#define TARGET AVX2
#include "_jsontext.c"
#undef PASS
#undef TARGET
#endif

/* The passes the processor runs best, chosen when the module loads (`use_simd`) */
static Py_ssize_t (*saved_by_escapes)(const unsigned char *, Py_ssize_t) = saved_by_escapes_base;
static Py_ssize_t (*scan)(const unsigned char *, Py_ssize_t, Py_ssize_t, Cuts *) = scan_base;

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

/* cut_strings(data, min_size): (invalid, cut, places). `invalid` is where the first sequence
 * that is not UTF-8 starts, or -1. If the bytes are UTF-8: `cut` is data with each string value
 * that `scan` finds replaced by a placeholder, a string holding a byte that is no UTF-8 (or
 * None if there is none); `places` is {offset of a placeholder in cut: (start, stop) of its
 * string in data}. msgspec skips a placeholder as it skips the string; it fails to decode one
 * into a str, and a Raw (a page kept as its JSON) is told by its place. */
static PyObject *cut_strings(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "cut_strings(data, min_size) takes two arguments");
        return NULL;
    }
    Py_ssize_t min_size = PyLong_AsSsize_t(args[1]);
    if (min_size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (min_size != 0 && min_size <= 64) {
        PyErr_SetString(PyExc_ValueError, "cut_strings: min_size is 0 (no cut) or over 64");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *p = view.buf;
    const Py_ssize_t n = view.len;
    Cuts cuts = {NULL, 0, 0, 0};
    PyObject *result = NULL, *cut = NULL, *places = PyDict_New();
    Py_ssize_t invalid = scan(p, n, min_size, &cuts);
    if (invalid == -2 || places == NULL) {
        goto done;
    }
    if (invalid >= 0 || cuts.count == 0) {
        result = Py_BuildValue("(nOO)", invalid, Py_None, places);
        goto done;
    }
    cut = PyBytes_FromStringAndSize(NULL, n - cuts.removed);
    if (cut == NULL) {
        goto done;
    }
    char *base = PyBytes_AS_STRING(cut), *w = base;
    Py_ssize_t from = 0;
    for (Py_ssize_t k = 0; k < cuts.count; k++) {
        const Span span = cuts.spans[k];
        memcpy(w, p + from, (size_t)(span.start - from));
        w += span.start - from;
        PyObject *key = PyLong_FromSsize_t(w - base);
        PyObject *where = Py_BuildValue("(nn)", span.start, span.stop);
        int failed = key == NULL || where == NULL || PyDict_SetItem(places, key, where) < 0;
        Py_XDECREF(key);
        Py_XDECREF(where);
        if (failed) {
            goto done;
        }
        memcpy(w, PLACEHOLDER, PLACEHOLDER_SIZE);
        w += PLACEHOLDER_SIZE;
        from = span.stop;
    }
    memcpy(w, p + from, (size_t)(n - from));
    result = Py_BuildValue("(nOO)", (Py_ssize_t)-1, cut, places);
done:
    Py_XDECREF(cut);
    Py_XDECREF(places);
    PyMem_Free(cuts.spans);
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

/* use_simd(level): run the passes with "base" (SSE2) or "avx2" primitives; returns the level
 * they ran with. For tests, which check that both give the same. */
static PyObject *use_simd(PyObject *module, PyObject *level) {
    const char *was = scan == scan_base ? "base" : "avx2";
    const char *name = PyUnicode_AsUTF8(level);
    if (name == NULL) {
        return NULL;
    }
    if (strcmp(name, "base") == 0) {
        saved_by_escapes = saved_by_escapes_base;
        scan = scan_base;
#ifdef HAVE_AVX2
    } else if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2")) {
        saved_by_escapes = saved_by_escapes_avx2;
        scan = scan_avx2;
#endif
    } else {
        PyErr_Format(PyExc_ValueError, "use_simd: %R is not a level this processor runs", level);
        return NULL;
    }
    return PyUnicode_FromString(was);
}

static PyMethodDef methods[] = {
    {"use_simd", use_simd, METH_O,
     "use_simd(level, /)\n--\n\nRun the passes with \"base\" (SSE2) or \"avx2\" "
     "instructions; returns the level they ran with."},
    {"utf8_length", utf8_length, METH_O,
     "utf8_length(text, /)\n--\n\nThe length in UTF-8 bytes of the value of a JSON string, "
     "given as its JSON text (quotes included)."},
    {"cut_strings", (PyCFunction)(void (*)(void))cut_strings, METH_FASTCALL,
     "cut_strings(data, min_size, /)\n--\n\n(invalid, cut, places): where the bytes stop "
     "being UTF-8 (-1 if they do not); the bytes with each string value of min_size bytes or "
     "more that msgspec would take replaced by a placeholder (None if none is; min_size 0 cuts "
     "nothing); {offset of a placeholder in cut: (start, stop) of its string in data}."},
    {"offset_in", (PyCFunction)(void (*)(void))offset_in, METH_FASTCALL,
     "offset_in(part, whole, /)\n--\n\nWhere part's bytes start within whole's; -1 if "
     "they are not in them."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsontext",
    "Counting and checking JSON text without decoding it.", 0, methods,
};

PyMODINIT_FUNC PyInit__jsontext(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "PLACEHOLDER_SIZE", PLACEHOLDER_SIZE) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#ifdef HAVE_AVX2
    if (__builtin_cpu_supports("avx2")) {
        saved_by_escapes = saved_by_escapes_avx2;
        scan = scan_avx2;
    }
#endif
    return m;
}

#else /* the passes, once with each instruction set's primitives (PASS, TARGET) */

/* The bytes that the escapes of a JSON string's inside (s, n bytes) save, against the UTF-8
 * of its value; -1 if an escape is not JSON's. Sixty-four bytes a step, without a branch per
 * escape: a web page escapes a byte in fifteen (quotes, tabs, newlines, backslashes), and
 * stopping at each cost more than the rest of the count. */
TARGET static Py_ssize_t PASS(saved_by_escapes)(const unsigned char *s, Py_ssize_t n) {
    const unsigned char *end = s + n;
    const unsigned char *pair_low = NULL; /* the 'u' of a low surrogate counted with its high */
    unsigned char padded[64];
    uint64_t carry = 0;
    Py_ssize_t saved = 0;
    for (Py_ssize_t i = 0; i < n; i += 64) {
        Py_ssize_t left = n - i;
        const unsigned char *block = block_at(s + i, left, padded, sizeof padded);
        uint64_t escaped = escaped_bytes(PASS(equal_to)(block, '\\'), &carry);
        if (!escaped) {
            continue;
        }
        if (left < 64 && escaped >> left) {
            return -1; /* the closing quote is escaped: no string */
        }
        saved += __builtin_popcountll(escaped); /* two bytes for one; \u escapes save more */
        uint64_t others = escaped & ~PASS(simple_escapes)(block);
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

/* One pass over a measurement, sixty-four bytes a step: whether it is UTF-8 (the return: where
 * the first sequence that is not starts, or -1) and, if min_size is not 0, which string values
 * of min_size bytes or more (quotes included) msgspec would take as they are, to be cut out
 * (`*error` set, and -2 returned, if that list cannot grow).
 *
 * Strings are found as simdjson finds them: a quote no backslash escapes opens or closes one.
 * A string of more than 64 bytes ends in a later block than it begins, closed by the first
 * closing quote of a block that begins inside it; so only a block's last opening quote and
 * first closing one are looked at. A string is cut if no byte of it is below 0x20 and its
 * escapes are JSON's (surrogates paired), as msgspec checks a string it skips, and no colon
 * follows it (a key). In bytes that are not JSON, these may be no strings at all; the caller
 * decodes the original bytes whenever the cut ones fail. */
TARGET static Py_ssize_t PASS(scan)(const unsigned char *p, Py_ssize_t n, Py_ssize_t min_size,
                                    Cuts *cuts) {
    const unsigned char *end = p + n;
    const unsigned char *pair_low = NULL;
    unsigned char padded[64];
    uint64_t follow = 0, backslash_carry = 0, string_carry = 0;
    Py_ssize_t opened = -1, last_fault = -1;
    for (Py_ssize_t i = 0; i < n; i += 64) {
        const unsigned char *block = block_at(p + i, n - i, padded, sizeof padded);
        uint64_t high = PASS(high_bits)(block);
        if (high | follow) {
            Py_ssize_t invalid = utf8_in_block(p, n, i, high, &follow);
            if (invalid >= 0) {
                return invalid;
            }
        }
        if (min_size == 0) {
            continue;
        }
        uint64_t in_block = n - i < 64 ? (1ULL << (n - i)) - 1 : ~0ULL;
        uint64_t escaped = escaped_bytes(PASS(equal_to)(block, '\\'), &backslash_carry);
        uint64_t quotes = PASS(equal_to)(block, '"') & ~escaped & in_block;
        uint64_t inside = (quotes ? prefix_xor(quotes) : 0) ^ string_carry; /* a page's blocks */
        uint64_t began_inside = string_carry;
        string_carry = (uint64_t)((int64_t)inside >> 63);
        /* what msgspec refuses in a string (control bytes, escapes not JSON's), looked for
         * only where a string runs into or out of the block: no other can be long */
        uint64_t faults = 0;
        if (began_inside | string_carry) {
            faults = PASS(controls)(block) & inside & in_block;
            uint64_t others = escaped & inside & in_block;
            if (others) {
                others &= ~PASS(simple_escapes)(block);
            }
            while (others) {
                uint64_t bit = others & (0 - others);
                others ^= bit;
                if (!valid_u_escape(p + i + __builtin_ctzll(bit), end, &pair_low)) {
                    faults |= bit;
                }
            }
        }
        uint64_t closing = quotes & ~inside;
        if (began_inside && closing) {
            Py_ssize_t close = __builtin_ctzll(closing);
            Py_ssize_t stop = i + close + 1;
            Py_ssize_t after = skip_space(p, stop, n);
            int whole = last_fault < opened && !(faults & ((1ULL << close) - 1));
            if (stop - opened >= min_size && whole && (after >= n || p[after] != ':') &&
                add_cut(cuts, opened, stop) < 0) {
                return -2;
            }
        }
        if (faults) {
            last_fault = i + 63 - __builtin_clzll(faults);
        }
        uint64_t opening = quotes & inside;
        if (string_carry && opening) {
            opened = i + 63 - __builtin_clzll(opening);
        }
    }
    return -1;
}
#endif
