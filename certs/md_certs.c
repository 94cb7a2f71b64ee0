#include "md_certs.h"
