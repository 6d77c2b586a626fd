/* A C extension that burns CPU in a function with a known name,
 * burnext_spin, for the --native merge tests; built per CPython. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <time.h>

static volatile unsigned long burnext_sink;

static double thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Exported and never inlined: the profile must name it. The clock is read
 * between chunks so most samples land in the loop itself. */
__attribute__((noinline, visibility("default"))) double burnext_spin(double seconds)
{
	double t0 = thread_cpu(), now = t0;
	while (now - t0 < seconds) {
		for (unsigned long i = 0; i < 200000; i++)
			burnext_sink += i;
		now = thread_cpu();
	}
	__asm__ volatile("" ::: "memory");
	return now - t0;
}

static PyObject *burnext_burn(PyObject *self, PyObject *args)
{
	double seconds;
	(void)self;
	if (!PyArg_ParseTuple(args, "d", &seconds))
		return NULL;
	return PyFloat_FromDouble(burnext_spin(seconds));
}

static PyMethodDef burnext_methods[] = {
	{"burn", burnext_burn, METH_VARARGS, "Burn CPU for the given thread-CPU seconds."},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef burnext_module = {
	PyModuleDef_HEAD_INIT, "burnext", NULL, -1, burnext_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_burnext(void)
{
	return PyModule_Create(&burnext_module);
}
