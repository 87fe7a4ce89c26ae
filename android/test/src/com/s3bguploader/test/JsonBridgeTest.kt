package com.s3bguploader.test

import com.facebook.react.bridge.JavaOnlyArray
import com.facebook.react.bridge.JavaOnlyMap
import com.facebook.react.bridge.ReadableArray
import com.facebook.react.bridge.ReadableMap
import com.facebook.react.bridge.ReadableType
import com.s3bguploader.JsonBridge
import org.json.JSONObject
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.RobolectricTestRunner
import org.robolectric.annotation.Config

@RunWith(RobolectricTestRunner::class)
class JsonBridgeTest {
    @Before
    fun setUp() {
        JsonBridge.newMap = { JavaOnlyMap() }
        JsonBridge.newArray = { JavaOnlyArray() }
    }

    @Test
    fun jsonBecomesMapsWithNumbersAsDoublesAndNullsKept() {
        val json = """{"id":9007199254740991,"size":5242880,"ratio":0.5,"name":"a\"b","key":null,""" +
            """"error":{"code":"file_changed","message":"m"},"tags":[1,"x",null,true,[2]],"done":false}"""
        val map = JsonBridge.toMap(json)
        assertEquals(9007199254740991.0, map.getDouble("id"), 0.0)
        assertEquals(5242880.0, map.getDouble("size"), 0.0)
        assertEquals(0.5, map.getDouble("ratio"), 0.0)
        assertEquals("a\"b", map.getString("name"))
        assertEquals(ReadableType.Null, map.getType("key"))
        assertEquals("file_changed", map.getMap("error")!!.getString("code"))
        val tags = map.getArray("tags")!!
        assertEquals(5, tags.size())
        assertEquals(1.0, tags.getDouble(0), 0.0)
        assertEquals("x", tags.getString(1))
        assertEquals(ReadableType.Null, tags.getType(2))
        assertTrue(tags.getBoolean(3))
        assertEquals(2.0, tags.getArray(4)!!.getDouble(0), 0.0)
        assertEquals(false, map.getBoolean("done"))

        // And back: integers stay integers, the rest as given.
        val back = JSONObject(JsonBridge.toJson(map))
        assertEquals(9007199254740991L, back.getLong("id"))
        assertEquals("5242880", back.get("size").toString())
        assertEquals(0.5, back.getDouble("ratio"), 0.0)
        assertTrue(back.isNull("key"))
        assertEquals("x", back.getJSONArray("tags").getString(1))
    }

    @Test
    fun arraysAndRefusals() {
        val arr: ReadableArray = JsonBridge.toArray("""[{"a":1},{"a":2}]""")
        assertEquals(listOf(1.0, 2.0), (0 until arr.size()).map { (arr.getMap(it) as ReadableMap).getDouble("a") })
        assertEquals(3.0, JsonBridge.toReact("3") as Double, 0.0)
        try {
            JsonBridge.toMap("[1]")
            throw AssertionError("an array was taken for an object")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!.contains("not an object"))
        }
    }
}
