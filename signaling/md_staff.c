#include "md_staff.h"
