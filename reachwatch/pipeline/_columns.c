/* Rows of Python values -> the buffers of Arrow columns, for the store's tables.
 *
 * Analysis makes its rows as tuples: ten observations a measurement, of eighteen fields each.
 * pyarrow converted a chunk's rows at its end, when most had left the cache. Here each
 * measurement's rows are appended as soon as they are made, each value read once into its
 * column's buffers, and Python wraps the buffers as Arrow arrays without a copy: what analysis
 * spends besides making the rows went from 14.5 us a measurement to 6 (15,000 measurements).
 *
 * The values must be of the column's Python type (str, bytes, bool, int, float, datetime, a
 * list of str) or None: anything else raises TypeError, and an int that the column cannot
 * hold raises OverflowError, naming the column and the row, as pyarrow refuses them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data;
    size_t length;
    size_t capacity;
} Buffer;

static int reserve(Buffer *b, size_t more) {
    if (b->length + more <= b->capacity) {
        return 0;
    }
    size_t capacity = b->capacity ? b->capacity : 256;
    while (capacity < b->length + more) {
        capacity *= 2;
    }
    char *data = PyMem_Realloc(b->data, capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->capacity = capacity;
    return 0;
}

static int append(Buffer *b, const void *value, size_t size) {
    if (reserve(b, size) < 0) {
        return -1;
    }
    memcpy(b->data + b->length, value, size);
    b->length += size;
    return 0;
}

/* A bitmap (validity, or a boolean column's values) of `count` bits, grown as bits come. */
typedef struct {
    Buffer bytes;
    Py_ssize_t count;
    Py_ssize_t unset;
} Bits;

static int push_bit(Bits *bits, int set) {
    if (bits->count % 8 == 0) {
        const char zero = 0;
        if (append(&bits->bytes, &zero, 1) < 0) {
            return -1;
        }
    }
    if (set) {
        bits->bytes.data[bits->count / 8] |= (char)(1 << (bits->count % 8));
    } else {
        bits->unset++;
    }
    bits->count++;
    return 0;
}

/* A column's buffers as Arrow lays them out: validity, offsets (strings, lists), data. */
typedef struct {
    char kind;
    Bits valid;
    Buffer offsets;
    Buffer data;
    Bits flags;          /* a boolean column's values */
    Bits child_valid;    /* a list column's strings */
    Buffer child_offsets;
    Buffer child_data;
} Column;

static void release(Column *c) {
    PyMem_Free(c->valid.bytes.data);
    PyMem_Free(c->offsets.data);
    PyMem_Free(c->data.data);
    PyMem_Free(c->flags.bytes.data);
    PyMem_Free(c->child_valid.bytes.data);
    PyMem_Free(c->child_offsets.data);
    PyMem_Free(c->child_data.data);
}

static int append_offset(Buffer *offsets, size_t end) {
    if (end > INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "more than 2 GiB of values in one column");
        return -1;
    }
    int32_t offset = (int32_t)end;
    return append(offsets, &offset, sizeof offset);
}

static int append_text(Buffer *offsets, Buffer *data, PyObject *value) {
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(value, &size); /* raises on a lone surrogate */
    if (utf8 == NULL || append(data, utf8, (size_t)size) < 0) {
        return -1;
    }
    return append_offset(offsets, data->length);
}

static int append_bytes(Buffer *offsets, Buffer *data, PyObject *value) {
    Py_buffer view;
    if (PyObject_GetBuffer(value, &view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    int failed = append(data, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return failed < 0 ? -1 : append_offset(offsets, data->length);
}

static int64_t days_from_civil(int year, int month, int day) {
    /* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm) */
    year -= month <= 2;
    const int64_t era = (year >= 0 ? year : year - 399) / 400;
    const int64_t of_era = year - era * 400;
    const int64_t of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
    const int64_t of_cycle = of_era * 365 + of_era / 4 - of_era / 100 + of_year;
    return era * 146097 + of_cycle - 719468;
}

static int microseconds(PyObject *value, int64_t *out) {
    /* a naive datetime as it is; an aware one in UTC, as pyarrow converts it */
    int64_t days = days_from_civil(PyDateTime_GET_YEAR(value), PyDateTime_GET_MONTH(value),
                                   PyDateTime_GET_DAY(value));
    int64_t seconds = days * 86400 + PyDateTime_DATE_GET_HOUR(value) * 3600 +
                      PyDateTime_DATE_GET_MINUTE(value) * 60 + PyDateTime_DATE_GET_SECOND(value);
    int64_t result = seconds * 1000000 + PyDateTime_DATE_GET_MICROSECOND(value);
    PyObject *tz = PyDateTime_DATE_GET_TZINFO(value);
    if (tz != Py_None) {
        PyObject *offset = PyObject_CallMethod(value, "utcoffset", NULL);
        if (offset == NULL) {
            return -1;
        }
        if (PyDelta_Check(offset)) {
            result -= ((int64_t)PyDateTime_DELTA_GET_DAYS(offset) * 86400 +
                       PyDateTime_DELTA_GET_SECONDS(offset)) * 1000000 +
                      PyDateTime_DELTA_GET_MICROSECONDS(offset);
        }
        Py_DECREF(offset);
    }
    *out = result;
    return 0;
}

static int append_integer(Column *c, PyObject *value, int64_t low, uint64_t high, size_t size) {
    int overflow;
    long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (number == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow > 0 && c->kind == 'Q') {
        unsigned long long big = PyLong_AsUnsignedLongLong(value);
        if (big == (unsigned long long)-1 && PyErr_Occurred()) {
            return -1;
        }
        return append(&c->data, &big, size);
    }
    if (overflow || number < low || (number > 0 && (uint64_t)number > high)) {
        PyErr_SetString(PyExc_OverflowError, "out of the column's range");
        return -1;
    }
    if (size == 4) {
        int32_t small = (int32_t)number;
        return append(&c->data, &small, size);
    }
    int64_t wide = (int64_t)number;
    return append(&c->data, &wide, size);
}

static const char *expected(char kind) {
    switch (kind) {
    case 's': return "str";
    case 'y': return "bytes";
    case 'b': return "bool";
    case 'i': case 'q': case 'Q': return "int";
    case 'd': return "float";
    case 't': return "datetime";
    default: return "a list of str";
    }
}

/* Append one value (not None) to its column; 0, or -1 with an exception set. A value of
 * another type sets nothing and returns 1: the caller says which column and row. */
static int append_value(Column *c, PyObject *value) {
    switch (c->kind) {
    case 's':
        return PyUnicode_Check(value) ? append_text(&c->offsets, &c->data, value) : 1;
    case 'y':
        return PyObject_CheckBuffer(value) && !PyUnicode_Check(value)
                   ? append_bytes(&c->offsets, &c->data, value) : 1;
    case 'b':
        return PyBool_Check(value) ? push_bit(&c->flags, value == Py_True) : 1;
    case 'i':
        return PyLong_Check(value) && !PyBool_Check(value)
                   ? append_integer(c, value, INT32_MIN, INT32_MAX, 4) : 1;
    case 'q':
        return PyLong_Check(value) && !PyBool_Check(value)
                   ? append_integer(c, value, INT64_MIN, INT64_MAX, 8) : 1;
    case 'Q':
        return PyLong_Check(value) && !PyBool_Check(value)
                   ? append_integer(c, value, 0, UINT64_MAX, 8) : 1;
    case 'd': {
        double number;
        if (PyFloat_Check(value)) {
            number = PyFloat_AS_DOUBLE(value);
        } else if (PyLong_Check(value)) {
            number = PyLong_AsDouble(value);
            if (number == -1.0 && PyErr_Occurred()) {
                return -1;
            }
        } else {
            return 1;
        }
        return append(&c->data, &number, sizeof number);
    }
    case 't': {
        int64_t us;
        if (!PyDateTime_Check(value)) {
            return 1;
        }
        return microseconds(value, &us) < 0 ? -1 : append(&c->data, &us, sizeof us);
    }
    default: { /* 'L' */
        if (!PyList_Check(value) && !PyTuple_Check(value)) {
            return 1;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(value);
        PyObject **items = PySequence_Fast_ITEMS(value);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (items[i] == Py_None) {
                if (push_bit(&c->child_valid, 0) < 0 ||
                    append_offset(&c->child_offsets, c->child_data.length) < 0) {
                    return -1;
                }
            } else if (!PyUnicode_Check(items[i])) {
                return 1;
            } else if (push_bit(&c->child_valid, 1) < 0 ||
                       append_text(&c->child_offsets, &c->child_data, items[i]) < 0) {
                return -1;
            }
        }
        return append_offset(&c->offsets, (size_t)c->child_valid.count);
    }
    }
}

/* A null: nothing in the values but a place (an empty string or list, a zero). */
static int append_null(Column *c) {
    static const char zeros[8] = {0};
    switch (c->kind) {
    case 's': case 'y':
        return append_offset(&c->offsets, c->data.length);
    case 'L':
        return append_offset(&c->offsets, (size_t)c->child_valid.count);
    case 'b':
        return push_bit(&c->flags, 0);
    case 'i':
        return append(&c->data, zeros, 4);
    default:
        return append(&c->data, zeros, 8);
    }
}

static PyObject *as_bytes(const Buffer *b) {
    return PyBytes_FromStringAndSize(b->data ? b->data : "", (Py_ssize_t)b->length);
}

static PyObject *validity(const Bits *bits) {
    if (bits->unset == 0) {
        Py_RETURN_NONE;
    }
    return as_bytes(&bits->bytes);
}

/* (null count, validity or None, then the kind's buffers; a list's strings as a tuple) */
static PyObject *result_of(const Column *c) {
    PyObject *valid = validity(&c->valid);
    if (valid == NULL) {
        return NULL;
    }
    PyObject *result;
    switch (c->kind) {
    case 's': case 'y':
        result = Py_BuildValue("(nNNN)", c->valid.unset, valid, as_bytes(&c->offsets),
                               as_bytes(&c->data));
        break;
    case 'b':
        result = Py_BuildValue("(nNN)", c->valid.unset, valid, as_bytes(&c->flags.bytes));
        break;
    case 'L':
        result = Py_BuildValue("(nNN(nNNN))", c->valid.unset, valid, as_bytes(&c->offsets),
                               c->child_valid.unset, validity(&c->child_valid),
                               as_bytes(&c->child_offsets), as_bytes(&c->child_data));
        break;
    default:
        result = Py_BuildValue("(nNN)", c->valid.unset, valid, as_bytes(&c->data));
    }
    return result;
}

/* A place in a column's buffers, to go back to when a row cannot be appended. */
typedef struct {
    Py_ssize_t valid, valid_unset, flags, flags_unset, child_valid, child_valid_unset;
    size_t offsets, data, child_offsets, child_data;
} Mark;

static Mark mark(const Column *c) {
    Mark m = {c->valid.count, c->valid.unset, c->flags.count, c->flags.unset,
              c->child_valid.count, c->child_valid.unset, c->offsets.length, c->data.length,
              c->child_offsets.length, c->child_data.length};
    return m;
}

static void cut_bits(Bits *bits, Py_ssize_t count, Py_ssize_t unset) {
    bits->count = count;
    bits->unset = unset;
    bits->bytes.length = (size_t)(count + 7) / 8;
    if (count % 8) { /* the bits after the mark in its last byte are unset again */
        bits->bytes.data[count / 8] &= (char)((1 << (count % 8)) - 1);
    }
}

static void go_back(Column *c, const Mark *m) {
    cut_bits(&c->valid, m->valid, m->valid_unset);
    cut_bits(&c->flags, m->flags, m->flags_unset);
    cut_bits(&c->child_valid, m->child_valid, m->child_valid_unset);
    c->offsets.length = m->offsets;
    c->data.length = m->data;
    c->child_offsets.length = m->child_offsets;
    c->child_data.length = m->child_data;
}

typedef struct {
    PyObject_HEAD
    Py_ssize_t width;
    Py_ssize_t rows;
    PyObject *names; /* a tuple of str, for errors */
    Py_ssize_t rows_before; /* of the last extend; -1 when there is nothing to undo */
    Column *cols;
    Mark *marks;
} Columns;

static int started(Columns *self) {
    /* the first offset of every column of variable-size values */
    for (Py_ssize_t k = 0; k < self->width; k++) {
        Column *c = &self->cols[k];
        if ((c->kind == 's' || c->kind == 'y' || c->kind == 'L') &&
            append_offset(&c->offsets, 0) < 0) {
            return -1;
        }
        if (c->kind == 'L' && append_offset(&c->child_offsets, 0) < 0) {
            return -1;
        }
    }
    return 0;
}

static void clear_columns(Columns *self) {
    for (Py_ssize_t k = 0; self->cols != NULL && k < self->width; k++) {
        char kind = self->cols[k].kind;
        release(&self->cols[k]);
        memset(&self->cols[k], 0, sizeof(Column));
        self->cols[k].kind = kind;
    }
    self->rows = 0;
    self->rows_before = -1;
}

static int Columns_init(Columns *self, PyObject *args, PyObject *kwds) {
    const char *kinds;
    Py_ssize_t width;
    PyObject *names;
    if (!PyArg_ParseTuple(args, "s#O!:Columns", &kinds, &width, &PyTuple_Type, &names)) {
        return -1;
    }
    if (self->cols != NULL) {
        PyErr_SetString(PyExc_TypeError, "Columns are made once");
        return -1;
    }
    if (PyTuple_GET_SIZE(names) != width || strspn(kinds, "sybiqQdtL") != (size_t)width) {
        PyErr_SetString(PyExc_ValueError, "one name and one kind (of 'sybiqQdtL') a column");
        return -1;
    }
    self->cols = PyMem_Calloc((size_t)width + 1, sizeof(Column));
    self->marks = PyMem_Calloc((size_t)width + 1, sizeof(Mark));
    if (self->cols == NULL || self->marks == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->width = width;
    self->rows_before = -1;
    Py_INCREF(names);
    self->names = names;
    for (Py_ssize_t k = 0; k < width; k++) {
        self->cols[k].kind = kinds[k];
    }
    return started(self);
}

static void Columns_dealloc(Columns *self) {
    clear_columns(self);
    PyMem_Free(self->cols);
    PyMem_Free(self->marks);
    Py_XDECREF(self->names);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* One value into column k of row r: 0, or -1 with the exception that says where. */
static int put(Columns *self, Py_ssize_t k, Py_ssize_t r, PyObject *value) {
    Column *c = &self->cols[k];
    int status;
    if (value == Py_None) {
        status = push_bit(&c->valid, 0) < 0 ? -1 : append_null(c);
    } else {
        status = append_value(c, value);
        if (status == 0) {
            status = push_bit(&c->valid, 1);
        }
    }
    if (status == 1) {
        PyErr_Format(PyExc_TypeError, "column %R, row %zd: expected %s, got %.80s",
                     PyTuple_GET_ITEM(self->names, k), r, expected(c->kind),
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    if (status < 0 && PyErr_ExceptionMatches(PyExc_OverflowError)) {
        PyErr_Format(PyExc_OverflowError, "column %R, row %zd: %R is out of range",
                     PyTuple_GET_ITEM(self->names, k), r, value);
    }
    return status;
}

static PyObject *Columns_extend(Columns *self, PyObject *rows) {
    if (self->cols == NULL) {
        PyErr_SetString(PyExc_TypeError, "Columns not initialised");
        return NULL;
    }
    PyObject *fast = PySequence_Fast(rows, "rows must be a sequence of tuples");
    if (fast == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    for (Py_ssize_t k = 0; k < self->width; k++) {
        self->marks[k] = mark(&self->cols[k]);
    }
    self->rows_before = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PySequence_Fast_GET_ITEM(fast, i);
        Py_ssize_t r = i; /* of this call: the rows of one measurement, say */
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != self->width) {
            PyErr_Format(PyExc_TypeError, "row %zd: expected a tuple of %zd values", r,
                         self->width);
            goto failed;
        }
        for (Py_ssize_t k = 0; k < self->width; k++) {
            if (put(self, k, r, PyTuple_GET_ITEM(row, k)) < 0) {
                goto failed;
            }
        }
    }
    self->rows_before = self->rows;
    self->rows += n;
    Py_DECREF(fast);
    Py_RETURN_NONE;
failed: /* all of the rows or none: the columns are as they were before the call */
    for (Py_ssize_t k = 0; k < self->width; k++) {
        go_back(&self->cols[k], &self->marks[k]);
    }
    Py_DECREF(fast);
    return NULL;
}

static PyObject *Columns_undo(Columns *self, PyObject *unused) {
    if (self->cols == NULL || self->rows_before < 0) {
        PyErr_SetString(PyExc_ValueError, "no extend to undo");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < self->width; k++) {
        go_back(&self->cols[k], &self->marks[k]);
    }
    self->rows = self->rows_before;
    self->rows_before = -1;
    Py_RETURN_NONE;
}

static PyObject *Columns_take(Columns *self, PyObject *unused) {
    if (self->cols == NULL) {
        PyErr_SetString(PyExc_TypeError, "Columns not initialised");
        return NULL;
    }
    PyObject *result = PyList_New(self->width);
    for (Py_ssize_t k = 0; result != NULL && k < self->width; k++) {
        PyObject *column = result_of(&self->cols[k]);
        if (column == NULL) {
            Py_CLEAR(result);
        } else {
            PyList_SET_ITEM(result, k, column);
        }
    }
    if (result != NULL) {
        clear_columns(self);
        if (started(self) < 0) {
            Py_CLEAR(result);
        }
    }
    return result;
}

static Py_ssize_t Columns_len(Columns *self) { return self->rows; }

static PyMethodDef Columns_methods[] = {
    {"extend", (PyCFunction)Columns_extend, METH_O,
     "extend(rows, /)\n--\n\nAppend rows (tuples, a value a column): all of them, or none "
     "and the TypeError or OverflowError that names the column and row refused."},
    {"undo", (PyCFunction)Columns_undo, METH_NOARGS,
     "undo()\n--\n\nTake back the rows of the last extend (when the rows of another table "
     "that go with them were refused)."},
    {"take", (PyCFunction)Columns_take, METH_NOARGS,
     "take()\n--\n\nEach column's buffers: (null count, validity or None, then offsets and "
     "data, data, or offsets and the list's strings as buffers of their own); the columns "
     "are empty again."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Columns_as_sequence = {.sq_length = (lenfunc)Columns_len};

static PyTypeObject ColumnsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "reachwatch.pipeline._columns.Columns",
    .tp_basicsize = sizeof(Columns),
    .tp_dealloc = (destructor)Columns_dealloc,
    .tp_as_sequence = &Columns_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Columns(kinds, names, /)\n--\n\nColumns of the kinds given one letter a "
              "column (s str, y bytes, b bool, i int32, q int64, Q uint64, d float64, "
              "t timestamp[us], L list of str), filled row by row.",
    .tp_methods = Columns_methods,
    .tp_init = (initproc)Columns_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_columns",
    "Rows of Python values to the buffers of Arrow columns.", 0, NULL,
};

PyMODINIT_FUNC PyInit__columns(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL || PyType_Ready(&ColumnsType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddObjectRef(m, "Columns", (PyObject *)&ColumnsType) < 0) {
        Py_CLEAR(m);
    }
    return m;
}
