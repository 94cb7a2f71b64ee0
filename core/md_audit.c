#include "md_audit.h"
