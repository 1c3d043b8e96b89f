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

static PyMethodDef methods[] = {
    {"utf8_length", utf8_length, METH_O,
     "utf8_length(text, /)\n--\n\nThe length in UTF-8 bytes of the value of a JSON string, "
     "given as its JSON text (quotes included)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_jsontext",
    "Counting on JSON text without decoding it.", 0, methods,
};

PyMODINIT_FUNC PyInit__jsontext(void) { return PyModule_Create(&module); }
