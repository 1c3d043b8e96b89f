/* The UTF-8 length of a JSON string's value, counted on its JSON text without decoding it.
 *
 * A web page in a measurement is a JSON string of up to megabytes, and most are only measured:
 * decoding one into a Python str and encoding that back to count its bytes cost 1.2 ms for a
 * 500 kB page, most of an ingest's time on such pages. Counting its escapes here costs a pass
 * over its bytes, sixteen at a time. The text is assumed to be one that msgspec accepted
 * (escapes and surrogate pairs valid); what is not a JSON string is refused with ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static const unsigned char simple_escape[256] = {
    ['"'] = 1, ['\\'] = 1, ['/'] = 1, ['b'] = 1, ['f'] = 1, ['n'] = 1, ['r'] = 1, ['t'] = 1,
};

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

static const unsigned char *next_escape(const unsigned char *p, const unsigned char *end) {
#if defined(__SSE2__)
    const __m128i backslash = _mm_set1_epi8('\\');
    while (end - p >= 16) { /* sixteen bytes a step: an escape every dozen bytes is common */
        __m128i block = _mm_loadu_si128((const __m128i *)p);
        unsigned int found = (unsigned int)_mm_movemask_epi8(_mm_cmpeq_epi8(block, backslash));
        if (found) {
            return p + __builtin_ctz(found);
        }
        p += 16;
    }
#endif
    return memchr(p, '\\', (size_t)(end - p));
}

static PyObject *utf8_length(PyObject *module, PyObject *text) {
    Py_buffer view;
    if (PyObject_GetBuffer(text, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *p = view.buf;
    const unsigned char *end = p + view.len;
    if (view.len < 2 || p[0] != '"' || end[-1] != '"') {
        goto invalid;
    }
    p++;
    end--;
    /* every byte is one byte of the value but for escapes: count what each one saves */
    Py_ssize_t saved = 0;
    while (p < end) {
        p = next_escape(p, end);
        if (p == NULL) {
            break;
        }
        p++;
        if (p >= end) {
            goto invalid;
        }
        if (*p != 'u') {
            if (!simple_escape[*p]) {
                goto invalid;
            }
            saved += 1; /* two bytes for one */
            p += 1;
            continue;
        }
        unsigned int code, low;
        if (!hex4(p + 1, end, &code)) {
            goto invalid;
        }
        p += 5;
        if (code < 0x80) {
            saved += 5;
        } else if (code < 0x800) {
            saved += 4;
        } else if (code >= 0xD800 && code < 0xDC00 && end - p >= 6 && p[0] == '\\' &&
                   p[1] == 'u' && hex4(p + 2, end, &low) && low >= 0xDC00 && low < 0xE000) {
            saved += 8; /* a surrogate pair, twelve bytes: one character outside the BMP */
            p += 6;
        } else {
            saved += 3; /* a lone surrogate counts as Python's surrogatepass encodes it */
        }
    }
    Py_ssize_t length = view.len - 2 - saved;
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(length);

invalid:
    PyBuffer_Release(&view);
    PyErr_SetString(PyExc_ValueError, "not a JSON string");
    return NULL;
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
