#include "md_store.h"
