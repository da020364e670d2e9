// Clang's thread-safety analysis (-Wthread-safety): which mutex guards which member, and which
// functions must or must not be called with it held. The compiler checks them; on compilers
// without the analysis (gcc) they expand to nothing. Same names as leveldb's
// port/thread_annotations.h and clang's documentation.
#pragma once

#if defined(__clang__)
#define EDGESYNC_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define EDGESYNC_THREAD_ANNOTATION(x)
#endif

// On a data member: reads and writes require holding `x`.
#define GUARDED_BY(x) EDGESYNC_THREAD_ANNOTATION(guarded_by(x))
// On a pointer member: the pointee is guarded by `x`.
#define PT_GUARDED_BY(x) EDGESYNC_THREAD_ANNOTATION(pt_guarded_by(x))
// On a function: the caller must hold (REQUIRES) or must not hold (EXCLUDES) the capabilities.
#define REQUIRES(...) EDGESYNC_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) EDGESYNC_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// On a function: it acquires / releases the capabilities (the object itself when none given).
#define ACQUIRE(...) EDGESYNC_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) EDGESYNC_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) EDGESYNC_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// On a function: asserts at run time that the capability is held (tells the analysis so).
#define ASSERT_CAPABILITY(x) EDGESYNC_THREAD_ANNOTATION(assert_capability(x))
// On a class: instances are capabilities (a mutex), or RAII holders of one (a lock).
#define CAPABILITY(x) EDGESYNC_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY EDGESYNC_THREAD_ANNOTATION(scoped_lockable)
// On a function the analysis cannot follow; say why where it is used.
#define NO_THREAD_SAFETY_ANALYSIS EDGESYNC_THREAD_ANNOTATION(no_thread_safety_analysis)
