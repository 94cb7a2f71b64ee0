#include "md_totp.h"
