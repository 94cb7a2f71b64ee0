#include "md_media.h"
