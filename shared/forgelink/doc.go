// Package forgelink holds forgelink's domain: projects, webhook deliveries,
// normalized VCS events, error kinds, and the interfaces (Store, Sealer,
// Queue, Forge) that adapters implement. It imports only the standard library
// and knows nothing of AWS or HTTP.
//
// Adapters attach an error Kind at the boundary and callers branch on it:
//
//	p, err := store.GetProjectByHookID(ctx, hookID)
//	if forgelink.KindOf(err) == forgelink.NotFound {
//		// unknown hook: answer 404
//	}
package forgelink
