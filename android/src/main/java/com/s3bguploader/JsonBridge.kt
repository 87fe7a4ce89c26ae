package com.s3bguploader

import com.facebook.react.bridge.Arguments
import com.facebook.react.bridge.ReadableArray
import com.facebook.react.bridge.ReadableMap
import com.facebook.react.bridge.ReadableType
import com.facebook.react.bridge.WritableArray
import com.facebook.react.bridge.WritableMap
import org.json.JSONArray
import org.json.JSONObject
import org.json.JSONTokener

/**
 * JSON <-> React Native maps, generically: the engine produces and parses the
 * spec's shapes itself, so no field is named here. Numbers become doubles
 * (JavaScript numbers); the engine keeps them below 2^53.
 */
object JsonBridge {
    /** Map and array factories; tests swap in `JavaOnlyMap`/`JavaOnlyArray` (no native code). */
    @Volatile var newMap: () -> WritableMap = { Arguments.createMap() }

    @Volatile var newArray: () -> WritableArray = { Arguments.createArray() }

    /** A JSON text (object, array or scalar) as the value a promise resolves with. */
    fun toReact(json: String): Any? = convert(JSONTokener(json).nextValue())

    fun toMap(json: String): WritableMap =
        toReact(json) as? WritableMap ?: throw IllegalArgumentException("the engine's JSON is not an object")

    fun toArray(json: String): WritableArray =
        toReact(json) as? WritableArray ?: throw IllegalArgumentException("the engine's JSON is not an array")

    private fun convert(value: Any?): Any? = when (value) {
        null, JSONObject.NULL -> null
        is JSONObject -> newMap().also { map ->
            for (key in value.keys()) {
                when (val v = convert(value.opt(key))) {
                    null -> map.putNull(key)
                    is Boolean -> map.putBoolean(key, v)
                    is Double -> map.putDouble(key, v)
                    is String -> map.putString(key, v)
                    is WritableMap -> map.putMap(key, v)
                    is WritableArray -> map.putArray(key, v)
                    else -> map.putString(key, v.toString())
                }
            }
        }
        is JSONArray -> newArray().also { array ->
            for (i in 0 until value.length()) {
                when (val v = convert(value.opt(i))) {
                    null -> array.pushNull()
                    is Boolean -> array.pushBoolean(v)
                    is Double -> array.pushDouble(v)
                    is String -> array.pushString(v)
                    is WritableMap -> array.pushMap(v)
                    is WritableArray -> array.pushArray(v)
                    else -> array.pushString(v.toString())
                }
            }
        }
        is Number -> value.toDouble()
        is Boolean, is String -> value
        else -> value.toString()
    }

    /** A React Native map as JSON text (for inputs that arrive as maps). */
    fun toJson(map: ReadableMap): String = objectOf(map).toString()

    private fun objectOf(map: ReadableMap): JSONObject {
        val out = JSONObject()
        val keys = map.keySetIterator()
        while (keys.hasNextKey()) {
            val key = keys.nextKey()
            out.put(key, valueOf(map.getType(key), { map.getBoolean(key) }, { map.getDouble(key) }, { map.getString(key) }, { map.getMap(key) }, { map.getArray(key) }))
        }
        return out
    }

    private fun arrayOf(array: ReadableArray): JSONArray {
        val out = JSONArray()
        for (i in 0 until array.size()) {
            out.put(valueOf(array.getType(i), { array.getBoolean(i) }, { array.getDouble(i) }, { array.getString(i) }, { array.getMap(i) }, { array.getArray(i) }))
        }
        return out
    }

    private inline fun valueOf(
        type: ReadableType,
        bool: () -> Boolean,
        num: () -> Double,
        str: () -> String?,
        map: () -> ReadableMap?,
        arr: () -> ReadableArray?,
    ): Any = when (type) {
        ReadableType.Null -> JSONObject.NULL
        ReadableType.Boolean -> bool()
        ReadableType.Number -> num().let { d -> if (d % 1.0 == 0.0 && Math.abs(d) < 9.007199254740992E15) d.toLong() else d }
        ReadableType.String -> str() ?: JSONObject.NULL
        ReadableType.Map -> map()?.let { objectOf(it) } ?: JSONObject.NULL
        ReadableType.Array -> arr()?.let { arrayOf(it) } ?: JSONObject.NULL
    }
}
