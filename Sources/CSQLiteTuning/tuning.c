#include <sqlite3.h>
#include "CSQLiteTuning.h"

int chat_sqlite_disable_memory_statistics(void) {
    // sqlite3_config is variadic, which Swift cannot call: hence this shim.
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int chat_sqlite_enable_uri_filenames(void) {
    return sqlite3_config(SQLITE_CONFIG_URI, 1);
}
