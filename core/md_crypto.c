#include "md_crypto.h"
