// SPDX-License-Identifier: Apache-2.0
// Napi::Object (built by src/plan.ts) → sbx::Plan, on the JS thread.
#ifndef NSBOX_MARSHAL_H_
#define NSBOX_MARSHAL_H_

#include <napi.h>

#include <memory>

#include "plan.h"

namespace sbx::marshal {

// Throws a JS TypeError naming the field when the object is not shaped as native.ts says.
// This is a second line of defence: options.ts validated the user's input already.
std::unique_ptr<Plan> toPlan(const Napi::Object& object);

}  // namespace sbx::marshal

#endif  // NSBOX_MARSHAL_H_
