#include "md_registry.h"
