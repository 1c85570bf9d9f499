with

source as (

    select * from {{ source('raw', 'order_items') }}

),

renamed as (

    select
        id as order_item_id,
        order_id,
        product_id,
        quantity,
        -- The price is copied onto the line when the order is placed, so later price
        -- changes in the catalogue do not rewrite history.
        {{ cents_to_dollars('unit_price_cents') }} as unit_price,
        {{ cents_to_dollars('quantity * unit_price_cents') }} as line_amount
    from source

)

select * from renamed
