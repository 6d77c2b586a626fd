/* The one list of CPython layout fields cgprof reads. struct py_layout,
 * the _Py_DebugOffsets map and scripts/gen-python-layouts.py all take
 * their fields from here, so a field is added in one place.
 *
 * PY_FIELD(name, debug) : name is a column of struct py_layout (a byte
 * offset or size, -1 where a version has no such field); debug is the
 * member of _Py_DebugOffsets (3.13+) that holds it, or NONE where the
 * target does not describe it and the generated row is used. The
 * fields from interp_modules on are what the thread-name reader
 * (threadnames.c) follows: sys.modules, dicts, ints, instance attributes;
 * the *_before ones are bytes before an object, the tp* ones flag bits,
 * managed_values_tag what 3.12 takes off the values pointer it keeps
 * in its dict-or-values word (setting bit 0, which a dict lacks). The
 * generator reads this file as text: keep one PY_FIELD per line. */
#ifndef CGPROF_PY_LAYOUT_FIELDS_H
#define CGPROF_PY_LAYOUT_FIELDS_H

#define PY_LAYOUT_FIELDS(PY_FIELD)                                          \
	PY_FIELD(runtime_interp_head, runtime_state.interpreters_head)       \
	PY_FIELD(interp_tstate_head, interpreter_state.threads_head)         \
	PY_FIELD(interp_threads_main, interpreter_state.threads_main)        \
	PY_FIELD(tstate_next, thread_state.next)                             \
	PY_FIELD(tstate_interp, thread_state.interp)                         \
	PY_FIELD(tstate_frame, NONE)                                         \
	PY_FIELD(tstate_cframe, NONE)                                        \
	PY_FIELD(tstate_current_frame, thread_state.current_frame)           \
	PY_FIELD(tstate_thread_id, thread_state.thread_id)                   \
	PY_FIELD(tstate_native_thread_id, thread_state.native_thread_id)     \
	PY_FIELD(tstate_datastack_chunk, thread_state.datastack_chunk)       \
	PY_FIELD(cframe_current_frame, NONE)                                 \
	PY_FIELD(frame_back, interpreter_frame.previous)                     \
	PY_FIELD(frame_code, interpreter_frame.executable)                   \
	PY_FIELD(frame_lasti, NONE)                                          \
	PY_FIELD(frame_instr, interpreter_frame.instr_ptr)                   \
	PY_FIELD(frame_owner, interpreter_frame.owner)                       \
	PY_FIELD(frame_is_entry, NONE)                                       \
	PY_FIELD(frame_size, interpreter_frame.size)                         \
	PY_FIELD(code_filename, code_object.filename)                        \
	PY_FIELD(code_name, code_object.name)                                \
	PY_FIELD(code_qualname, code_object.qualname)                        \
	PY_FIELD(code_firstlineno, code_object.firstlineno)                  \
	PY_FIELD(code_flags, NONE)                                           \
	PY_FIELD(code_linetable, code_object.linetable)                      \
	PY_FIELD(code_adaptive, code_object.co_code_adaptive)                \
	PY_FIELD(unicode_state, unicode_object.state)                        \
	PY_FIELD(unicode_length, unicode_object.length)                      \
	PY_FIELD(unicode_ascii_size, unicode_object.asciiobject_size)        \
	PY_FIELD(unicode_compact_size, unicode_object.compactunicodeobject_size) \
	PY_FIELD(bytes_size, bytes_object.ob_size)                           \
	PY_FIELD(bytes_sval, bytes_object.ob_sval)                           \
	PY_FIELD(interp_modules, interpreter_state.imports_modules)          \
	PY_FIELD(object_type, pyobject.ob_type)                              \
	PY_FIELD(type_basicsize, type_object.tp_basicsize)                   \
	PY_FIELD(type_dictoffset, type_object.tp_dictoffset)                 \
	PY_FIELD(type_flags, type_object.tp_flags)                           \
	PY_FIELD(heaptype_cached_keys, heap_type_object.ht_cached_keys)      \
	PY_FIELD(tpflag_managed_dict, NONE)                                  \
	PY_FIELD(tpflag_inline_values, NONE)                                 \
	PY_FIELD(managed_dict_before, NONE)                                  \
	PY_FIELD(managed_values_before, NONE)                                \
	PY_FIELD(managed_values_tag, NONE)                                   \
	PY_FIELD(module_dict, NONE)                                          \
	PY_FIELD(dict_keys, dict_object.ma_keys)                             \
	PY_FIELD(dict_values, dict_object.ma_values)                         \
	PY_FIELD(dictkeys_size, NONE)                                        \
	PY_FIELD(dictkeys_log2_size, NONE)                                   \
	PY_FIELD(dictkeys_log2_index_bytes, NONE)                            \
	PY_FIELD(dictkeys_kind, NONE)                                        \
	PY_FIELD(dictkeys_nentries, NONE)                                    \
	PY_FIELD(dictkeys_indices, NONE)                                     \
	PY_FIELD(dict_entry_size, NONE)                                      \
	PY_FIELD(dict_unicode_entry_size, NONE)                              \
	PY_FIELD(dictvalues_values, NONE)                                    \
	PY_FIELD(long_size, NONE)                                            \
	PY_FIELD(long_lv_tag, long_object.lv_tag)                            \
	PY_FIELD(long_digit, long_object.ob_digit)                           \
	PY_FIELD(long_digit_size, NONE)                                      \
	PY_FIELD(long_shift, NONE)

#endif
