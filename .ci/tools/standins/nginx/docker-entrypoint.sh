#!/bin/sh
# Like the official image's entrypoint: for `nginx ...`, render
# /etc/nginx/templates/*.template into /etc/nginx/conf.d/ with envsubst (defined
# variables only), then run /docker-entrypoint.d/*.sh, then exec the command.
set -e
if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
  templates=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
  out=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
  suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
  if [ -d "$templates" ]; then
    # Only variables that are set, as `${NAME}` for envsubst's SHELL-FORMAT argument.
    # shellcheck disable=SC2016,SC2046
    vars=$(printf '${%s} ' $(env | cut -d= -f1))
    for template in "$templates"/*"$suffix"; do
      [ -f "$template" ] || continue
      name=$(basename "$template" "$suffix")
      if [ -w "$out" ]; then
        envsubst "$vars" <"$template" >"$out/$name"
      else
        echo "$0: $out is not writable, skipping $template" >&2
      fi
    done
  fi
  for script in /docker-entrypoint.d/*.sh; do
    [ -x "$script" ] && "$script"
  done
fi
exec "$@"
