// libyaml (Debian: libyaml-dev), read by VaccelConfig's YAML composer.
#include <yaml.h>
