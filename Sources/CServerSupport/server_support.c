#define _GNU_SOURCE
#include <stddef.h>
#include <sys/socket.h>
#include "server_support.h"

int chat_accept_cloexec(int listener) {
    return accept4(listener, NULL, NULL, SOCK_CLOEXEC);
}
