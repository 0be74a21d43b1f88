#!/bin/sh
# Like the official image: arguments that start with `-` are options for redis-server.
# The official build turns protected mode off; Debian's keeps it on, so say it here.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = "redis-server" ]; then
  case " $* " in
    *" --protected-mode "*) ;;
    *) set -- "$@" --protected-mode no ;;
  esac
fi
exec "$@"
