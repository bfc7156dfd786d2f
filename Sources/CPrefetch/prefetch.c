/* The target is its header (static inline); SwiftPM wants one source file. */
#include "prefetch.h"
