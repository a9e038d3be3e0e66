// Package storetest is the contract suite that every forgelink.Store
// implementation runs, so the bbolt and DynamoDB stores behave alike.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) forgelink.Store {
//			s, err := bolt.Open(filepath.Join(t.TempDir(), "forgelink.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// newStore must return an empty store each time it is called; Run calls it
// once per subtest.
package storetest
